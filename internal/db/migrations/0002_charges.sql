-- 0002: charges (deductions against agreements), anomalies, and the trade
-- keys of notifications. Times are INTEGER unix nanoseconds UTC; NULL is the
-- zero time. Money is INTEGER in the currency's minor unit, never REAL.

CREATE TABLE charges (
    id                     INTEGER PRIMARY KEY,
    out_trade_no           TEXT    NOT NULL UNIQUE,
    transaction_id         TEXT    NOT NULL DEFAULT '',
    contract_id            TEXT    NOT NULL,
    out_contract_code      TEXT    NOT NULL,
    openid                 TEXT    NOT NULL,
    sub_mchid              TEXT    NOT NULL,
    sp_appid               TEXT    NOT NULL,
    sub_appid              TEXT    NOT NULL,
    amount_total           INTEGER NOT NULL,
    amount_currency        TEXT    NOT NULL,
    payer_total            INTEGER NOT NULL,
    payer_currency         TEXT    NOT NULL,
    exchange_rate_type     TEXT    NOT NULL,
    exchange_rate          INTEGER NOT NULL, -- the rate times 10^8
    description            TEXT    NOT NULL,
    attach                 TEXT    NOT NULL,
    goods_tag              TEXT    NOT NULL,
    merchant_category_code TEXT    NOT NULL,
    scene_device_id        TEXT    NOT NULL,
    scene_device_ip        TEXT    NOT NULL,
    bank_type              TEXT    NOT NULL,
    trade_state            TEXT    NOT NULL, -- WeChat's word, as given
    trade_state_desc       TEXT    NOT NULL,
    state                  TEXT    NOT NULL, -- papayd's ChargeState
    failure_code           TEXT    NOT NULL,
    failure_message        TEXT    NOT NULL,
    success_time           INTEGER,
    -- JSON array of the promotions WeChat applied; NULL when there are none.
    promotion_detail       TEXT CHECK (promotion_detail IS NULL OR json_valid(promotion_detail)),
    create_time            INTEGER NOT NULL,
    update_time            INTEGER
) STRICT;

-- WeChat's transaction id is unique once assigned; many charges have none yet.
CREATE UNIQUE INDEX charges_transaction_id ON charges (transaction_id) WHERE transaction_id <> '';

-- The page order of ListCharges, alone and under each filter; the created
-- time range is a range on the create_time column of each.
CREATE INDEX charges_page              ON charges (create_time DESC, id DESC);
CREATE INDEX charges_contract_id       ON charges (contract_id, create_time DESC, id DESC);
CREATE INDEX charges_out_contract_code ON charges (out_contract_code, create_time DESC, id DESC);
CREATE INDEX charges_openid            ON charges (openid, create_time DESC, id DESC);
CREATE INDEX charges_state             ON charges (state, create_time DESC, id DESC);
CREATE INDEX charges_sub_mchid         ON charges (sub_mchid, create_time DESC, id DESC);

-- The open charges, oldest first, for a reconciler: it stays as small as
-- the number of charges WeChat has not settled yet. A query uses it when
-- its WHERE repeats the condition; without statistics SQLite prefers
-- charges_state and a sort, so the query names it (INDEXED BY charges_open).
CREATE INDEX charges_open ON charges (create_time, id) WHERE state IN ('PENDING', 'PROCESSING');

ALTER TABLE notifications ADD COLUMN out_trade_no   TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN transaction_id TEXT NOT NULL DEFAULT '';

CREATE INDEX notifications_out_trade_no ON notifications (out_trade_no);

-- Notifications and answers that disagree with the local record in a way
-- papayd does not resolve silently (amount, currency, contract).
CREATE TABLE anomalies (
    id              INTEGER PRIMARY KEY,
    time            INTEGER,
    kind            TEXT NOT NULL,
    out_trade_no    TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    detail          TEXT NOT NULL
) STRICT;

CREATE INDEX anomalies_out_trade_no ON anomalies (out_trade_no);
