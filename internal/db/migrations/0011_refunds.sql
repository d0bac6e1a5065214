-- 0011: refunds of charges; the refunded total of a charge; the refund
-- key of notifications. Times are INTEGER unix nanoseconds UTC; NULL is
-- the zero time. Money is INTEGER in the currency's minor unit, never REAL.

CREATE TABLE refunds (
    id                 INTEGER PRIMARY KEY,
    out_refund_no      TEXT    NOT NULL UNIQUE,
    refund_id          TEXT    NOT NULL DEFAULT '', -- WeChat's; '' until it answered
    out_trade_no       TEXT    NOT NULL,            -- the charge's
    transaction_id     TEXT    NOT NULL,
    sub_mchid          TEXT    NOT NULL,
    sp_appid           TEXT    NOT NULL,
    sub_appid          TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    amount_refund      INTEGER NOT NULL,
    amount_currency    TEXT    NOT NULL,
    charge_total       INTEGER NOT NULL, -- the charge's total, sent as amount.total
    notify_url         TEXT    NOT NULL, -- sent with every send of the refund
    payer_refund       INTEGER NOT NULL,
    payer_currency     TEXT    NOT NULL,
    exchange_rate_type TEXT    NOT NULL,
    exchange_rate      INTEGER NOT NULL, -- the rate times 10^8
    status             TEXT    NOT NULL, -- WeChat's word, as given
    channel            TEXT    NOT NULL,
    recv_account       TEXT    NOT NULL,
    fund_source        TEXT    NOT NULL,
    state              TEXT    NOT NULL, -- papayd's RefundState
    failure_code       TEXT    NOT NULL,
    failure_message    TEXT    NOT NULL,
    last_error         TEXT    NOT NULL,
    success_time       INTEGER,
    create_time        INTEGER NOT NULL,
    update_time        INTEGER,
    attempts           INTEGER NOT NULL, -- the sends to WeChat
    last_send_time     INTEGER,          -- NULL: never sent
    next_check_time    INTEGER,          -- NULL: not scheduled
    check_attempts     INTEGER NOT NULL  -- the reconciler's passes
) STRICT;

-- WeChat's refund id is unique once assigned; many refunds have none yet.
CREATE UNIQUE INDEX refunds_refund_id ON refunds (refund_id) WHERE refund_id <> '';

-- The page order of ListRefunds, alone and under each filter. The
-- out_trade_no index also serves RefundsOfCharge (read backwards: oldest
-- first).
CREATE INDEX refunds_page         ON refunds (create_time DESC, id DESC);
CREATE INDEX refunds_out_trade_no ON refunds (out_trade_no, create_time DESC, id DESC);
CREATE INDEX refunds_state        ON refunds (state, create_time DESC, id DESC);
CREATE INDEX refunds_sub_mchid    ON refunds (sub_mchid, create_time DESC, id DESC);

-- The due scan of the reconciler: the scheduled refunds only (see 0004).
CREATE INDEX refunds_due ON refunds (next_check_time) WHERE next_check_time IS NOT NULL;

-- The sum of a charge's SUCCEEDED refunds. Charges of an older papayd
-- have none.
ALTER TABLE charges ADD COLUMN refunded_total INTEGER NOT NULL DEFAULT 0;

-- The refund a REFUND.* notification was about.
ALTER TABLE notifications ADD COLUMN out_refund_no TEXT NOT NULL DEFAULT '';

CREATE INDEX notifications_out_refund_no ON notifications (out_refund_no);
