-- 0001: the schema of internal/db's SQLite migrations 0001 to 0011, as it
-- stands after 0011, in PostgreSQL: the same tables, columns, defaults,
-- checks, unique keys and indexes (partial ones included), so that a row
-- means the same in both stores. The SQLite history (rebuilds, backfills of
-- older rows) has nothing to migrate here: this dialect starts at that
-- schema.
--
-- Types, as internal/db stores them (timecol.go):
-- * times are BIGINT unix nanoseconds UTC; NULL is the zero time (on
--   next_check_time: "no check scheduled"). Not timestamptz: it keeps
--   microseconds only;
-- * money is BIGINT in the currency's minor unit, never a float;
-- * JSON is TEXT, checked to be JSON (of the expected type), not JSONB:
--   papayd never queries inside it, and TEXT keeps the bytes papayd wrote;
-- * SQLite's INTEGER PRIMARY KEY (a rowid) is BIGINT GENERATED ALWAYS AS
--   IDENTITY: numbers are never reused, as AUTOINCREMENT promised for
--   intents; BLOB is BYTEA; REAL is DOUBLE PRECISION.

CREATE TABLE agreements (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_contract_code   TEXT    NOT NULL UNIQUE,
    contract_id         TEXT    NOT NULL DEFAULT '',
    plan_id             BIGINT  NOT NULL,
    sub_mchid           TEXT    NOT NULL,
    sp_appid            TEXT    NOT NULL,
    sub_appid           TEXT    NOT NULL,
    openid              TEXT    NOT NULL,
    user_display_name   TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    termination_mode    TEXT    NOT NULL,
    termination_note    TEXT    NOT NULL,
    signed_time         BIGINT,
    terminated_time     BIGINT,
    session_expire_time BIGINT,
    user_client_ip      TEXT    NOT NULL,
    return_url          TEXT    NOT NULL,
    return_appid        TEXT    NOT NULL,
    session_id          TEXT    NOT NULL,
    sign_url            TEXT    NOT NULL,
    show_code_url       TEXT    NOT NULL,
    create_time         BIGINT  NOT NULL,
    update_time         BIGINT,
    next_check_time     BIGINT,
    check_attempts      BIGINT  NOT NULL DEFAULT 0
);

-- WeChat's contract id is unique once assigned; many agreements have none yet.
CREATE UNIQUE INDEX agreements_contract_id ON agreements (contract_id) WHERE contract_id <> '';

-- The page order of ListAgreements, alone and under each filter.
CREATE INDEX agreements_page      ON agreements (create_time DESC, id DESC);
CREATE INDEX agreements_openid    ON agreements (openid, create_time DESC, id DESC);
CREATE INDEX agreements_plan_id   ON agreements (plan_id, create_time DESC, id DESC);
CREATE INDEX agreements_state     ON agreements (state, create_time DESC, id DESC);
CREATE INDEX agreements_sub_mchid ON agreements (sub_mchid, create_time DESC, id DESC);

-- The due scan: the scheduled agreements only.
CREATE INDEX agreements_due ON agreements (next_check_time) WHERE next_check_time IS NOT NULL;

-- A notification is processed exactly once per (sp_mchid, sub_mchid, id).
CREATE TABLE notifications (
    id                TEXT NOT NULL,
    sp_mchid          TEXT NOT NULL,
    sub_mchid         TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    summary           TEXT NOT NULL,
    create_time       BIGINT,
    receive_time      BIGINT,
    outcome           TEXT NOT NULL,
    out_contract_code TEXT NOT NULL,
    contract_id       TEXT NOT NULL,
    resource          BYTEA, -- the decrypted resource: stored, never logged
    out_trade_no      TEXT NOT NULL DEFAULT '',
    transaction_id    TEXT NOT NULL DEFAULT '',
    out_refund_no     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sp_mchid, sub_mchid, id)
);

CREATE INDEX notifications_out_contract_code ON notifications (out_contract_code);
CREATE INDEX notifications_contract_id       ON notifications (contract_id);
CREATE INDEX notifications_out_trade_no      ON notifications (out_trade_no);
CREATE INDEX notifications_out_refund_no     ON notifications (out_refund_no);

CREATE TABLE wechat_calls (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time        BIGINT,
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    http_status BIGINT  NOT NULL,
    code        TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    duration_ns BIGINT  NOT NULL,
    error       TEXT    NOT NULL
);

CREATE INDEX wechat_calls_time ON wechat_calls (time);

CREATE TABLE charges (
    id                     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_trade_no           TEXT    NOT NULL UNIQUE,
    transaction_id         TEXT    NOT NULL DEFAULT '',
    contract_id            TEXT    NOT NULL,
    out_contract_code      TEXT    NOT NULL,
    openid                 TEXT    NOT NULL,
    sub_mchid              TEXT    NOT NULL,
    sp_appid               TEXT    NOT NULL,
    sub_appid              TEXT    NOT NULL,
    amount_total           BIGINT  NOT NULL,
    amount_currency        TEXT    NOT NULL,
    payer_total            BIGINT  NOT NULL,
    payer_currency         TEXT    NOT NULL,
    exchange_rate_type     TEXT    NOT NULL,
    exchange_rate          BIGINT  NOT NULL, -- the rate times 10^8
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
    success_time           BIGINT,
    -- JSON array of the promotions WeChat applied; NULL when there are none.
    promotion_detail       TEXT CHECK (promotion_detail IS NULL OR promotion_detail::jsonb IS NOT NULL),
    create_time            BIGINT  NOT NULL,
    update_time            BIGINT,
    next_check_time        BIGINT,
    check_attempts         BIGINT  NOT NULL DEFAULT 0,
    notify_url             TEXT    NOT NULL DEFAULT '',
    last_send_time         BIGINT, -- NULL: never sent
    refunded_total         BIGINT  NOT NULL DEFAULT 0 -- the sum of its SUCCEEDED refunds
);

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

-- The open charges, oldest first, for a reconciler.
CREATE INDEX charges_open ON charges (create_time, id) WHERE state IN ('PENDING', 'PROCESSING', 'CLOSING');

-- The due scan: the scheduled charges only.
CREATE INDEX charges_due ON charges (next_check_time) WHERE next_check_time IS NOT NULL;

-- Notifications and answers that disagree with the local record in a way
-- papayd does not resolve silently.
CREATE TABLE anomalies (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time            BIGINT,
    kind            TEXT NOT NULL,
    out_trade_no    TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    detail          TEXT NOT NULL
);

CREATE INDEX anomalies_out_trade_no ON anomalies (out_trade_no);

-- A WeChat call papayd is about to send, recorded first. A row is an open
-- intent; deleting it resolves it. At most one open intent per kind and
-- key; an id is never reused.
CREATE TABLE intents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    note        TEXT   NOT NULL,
    create_time BIGINT NOT NULL,
    UNIQUE (kind, key)
);

-- The database belongs to one papayd identity. One row at most.
CREATE TABLE identity (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    mode       TEXT   NOT NULL CHECK (mode IN ('sandbox', 'live')),
    sp_mchid   TEXT   NOT NULL CHECK (sp_mchid <> ''),
    claim_time BIGINT NOT NULL
);

-- API keys: only the SHA-256 hash of a secret is kept; scopes and
-- sub_mchids are JSON arrays of strings ('[]': every sub-merchant).
CREATE TABLE api_keys (
    id             TEXT             PRIMARY KEY CHECK (id <> ''),
    name           TEXT             NOT NULL CHECK (name <> ''),
    scopes         TEXT             NOT NULL CHECK (jsonb_typeof(scopes::jsonb) = 'array'),
    sub_mchids     TEXT             NOT NULL CHECK (jsonb_typeof(sub_mchids::jsonb) = 'array'),
    secret_hash    BYTEA            NOT NULL CHECK (octet_length(secret_hash) = 32),
    rate_limit     DOUBLE PRECISION NOT NULL CHECK (rate_limit >= 0),
    create_time    BIGINT           NOT NULL,
    expire_time    BIGINT,          -- NULL: never
    last_used_time BIGINT,          -- NULL: never used
    revoke_time    BIGINT           -- NULL: not revoked
);

-- The audit trail.
CREATE TABLE audit_entries (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time     BIGINT NOT NULL,
    key_id   TEXT   NOT NULL, -- '' when the call had no key
    key_name TEXT   NOT NULL,
    peer     TEXT   NOT NULL,
    method   TEXT   NOT NULL,
    resource TEXT   NOT NULL,
    outcome  TEXT   NOT NULL
);

CREATE INDEX audit_entries_page     ON audit_entries (time DESC, id DESC);
CREATE INDEX audit_entries_resource ON audit_entries (resource, time DESC, id DESC);
CREATE INDEX audit_entries_key_id   ON audit_entries (key_id, time DESC, id DESC);

-- The outbox. sequence has no default: the store draws it from
-- events_sequence under the events lock just before the commit (see the
-- package's DESIGN), so that sequence order is commit order; a number is
-- never given twice, even after every row was pruned.
CREATE SEQUENCE events_sequence AS BIGINT MINVALUE 1;

CREATE TABLE events (
    sequence    BIGINT PRIMARY KEY,
    id          TEXT   NOT NULL UNIQUE, -- evt_...
    type        TEXT   NOT NULL,        -- agreement.signed, charge.succeeded, ...
    create_time BIGINT NOT NULL,
    sub_mchid   TEXT   NOT NULL,        -- '' for an anomaly of no charge
    resource    TEXT   NOT NULL CHECK (resource::json IS NOT NULL) -- the record's JSON (json, not jsonb: jsonb refuses \u0000)
);

-- A sub-merchant's events in sequence order.
CREATE INDEX events_sub_mchid ON events (sub_mchid, sequence);

-- The highest sequence pruned: a cursor below it has missed events.
CREATE TABLE event_horizon (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL
);
INSERT INTO event_horizon (id, pruned_through) VALUES (1, 0);

-- Webhooks: endpoints (marked DELETED, never removed) and deliveries (one
-- event to one endpoint; next_attempt_time is set exactly while PENDING).
CREATE TABLE webhook_endpoints (
    id             TEXT   PRIMARY KEY CHECK (id <> ''),
    url            TEXT   NOT NULL CHECK (url <> ''),
    event_types    TEXT   NOT NULL CHECK (jsonb_typeof(event_types::jsonb) = 'array'),
    sub_mchids     TEXT   NOT NULL CHECK (jsonb_typeof(sub_mchids::jsonb) = 'array'),
    secret         TEXT   NOT NULL CHECK (secret LIKE 'whsec\_%' ESCAPE '\'),
    state          TEXT   NOT NULL CHECK (state IN ('ENABLED', 'DISABLED', 'DELETED')),
    disable_reason TEXT   NOT NULL,
    cursor         BIGINT NOT NULL CHECK (cursor >= 0), -- the last event sequence taken
    create_time    BIGINT NOT NULL,
    update_time    BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id       TEXT   NOT NULL REFERENCES webhook_endpoints (id),
    event_id          TEXT   NOT NULL CHECK (event_id <> ''),
    event_sequence    BIGINT NOT NULL CHECK (event_sequence >= 0),
    event_type        TEXT   NOT NULL,
    sub_mchid         TEXT   NOT NULL,
    state             TEXT   NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts          BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_time BIGINT CHECK ((state = 'PENDING') = (next_attempt_time IS NOT NULL)),
    last_attempt_time BIGINT,          -- NULL: never attempted
    last_status       BIGINT NOT NULL, -- 0: no answer
    last_error        TEXT   NOT NULL,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state, event_sequence);
CREATE INDEX webhook_deliveries_event    ON webhook_deliveries (event_id);

-- Refunds of charges.
CREATE TABLE refunds (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    out_refund_no      TEXT   NOT NULL UNIQUE,
    refund_id          TEXT   NOT NULL DEFAULT '', -- WeChat's; '' until it answered
    out_trade_no       TEXT   NOT NULL,            -- the charge's
    transaction_id     TEXT   NOT NULL,
    sub_mchid          TEXT   NOT NULL,
    sp_appid           TEXT   NOT NULL,
    sub_appid          TEXT   NOT NULL,
    reason             TEXT   NOT NULL,
    amount_refund      BIGINT NOT NULL,
    amount_currency    TEXT   NOT NULL,
    charge_total       BIGINT NOT NULL, -- the charge's total, sent as amount.total
    notify_url         TEXT   NOT NULL, -- sent with every send of the refund
    payer_refund       BIGINT NOT NULL,
    payer_currency     TEXT   NOT NULL,
    exchange_rate_type TEXT   NOT NULL,
    exchange_rate      BIGINT NOT NULL, -- the rate times 10^8
    status             TEXT   NOT NULL, -- WeChat's word, as given
    channel            TEXT   NOT NULL,
    recv_account       TEXT   NOT NULL,
    fund_source        TEXT   NOT NULL,
    state              TEXT   NOT NULL, -- papayd's RefundState
    failure_code       TEXT   NOT NULL,
    failure_message    TEXT   NOT NULL,
    last_error         TEXT   NOT NULL,
    success_time       BIGINT,
    create_time        BIGINT NOT NULL,
    update_time        BIGINT,
    attempts           BIGINT NOT NULL, -- the sends to WeChat
    last_send_time     BIGINT,          -- NULL: never sent
    next_check_time    BIGINT,          -- NULL: not scheduled
    check_attempts     BIGINT NOT NULL  -- the reconciler's passes
);

-- WeChat's refund id is unique once assigned; many refunds have none yet.
CREATE UNIQUE INDEX refunds_refund_id ON refunds (refund_id) WHERE refund_id <> '';

CREATE INDEX refunds_page         ON refunds (create_time DESC, id DESC);
CREATE INDEX refunds_out_trade_no ON refunds (out_trade_no, create_time DESC, id DESC);
CREATE INDEX refunds_state        ON refunds (state, create_time DESC, id DESC);
CREATE INDEX refunds_sub_mchid    ON refunds (sub_mchid, create_time DESC, id DESC);

-- The due scan: the scheduled refunds only.
CREATE INDEX refunds_due ON refunds (next_check_time) WHERE next_check_time IS NOT NULL;
