-- 0001: agreements, processed notifications, the WeChat Pay call audit.
-- Times are INTEGER unix nanoseconds UTC; NULL is the zero time.

CREATE TABLE agreements (
    id                  INTEGER PRIMARY KEY,
    out_contract_code   TEXT    NOT NULL UNIQUE,
    contract_id         TEXT    NOT NULL DEFAULT '',
    plan_id             INTEGER NOT NULL,
    sub_mchid           TEXT    NOT NULL,
    sp_appid            TEXT    NOT NULL,
    sub_appid           TEXT    NOT NULL,
    openid              TEXT    NOT NULL,
    user_display_name   TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    termination_mode    TEXT    NOT NULL,
    termination_note    TEXT    NOT NULL,
    signed_time         INTEGER,
    terminated_time     INTEGER,
    session_expire_time INTEGER,
    user_client_ip      TEXT    NOT NULL,
    return_url          TEXT    NOT NULL,
    return_appid        TEXT    NOT NULL,
    session_id          TEXT    NOT NULL,
    sign_url            TEXT    NOT NULL,
    show_code_url       TEXT    NOT NULL,
    create_time         INTEGER NOT NULL,
    update_time         INTEGER
) STRICT;

-- WeChat's contract id is unique once assigned; many agreements have none yet.
CREATE UNIQUE INDEX agreements_contract_id ON agreements (contract_id) WHERE contract_id <> '';

-- The page order of ListAgreements, alone and under each filter. The state
-- index also lets a reconciler find open (PENDING, SIGNED) agreements.
CREATE INDEX agreements_page      ON agreements (create_time DESC, id DESC);
CREATE INDEX agreements_openid    ON agreements (openid, create_time DESC, id DESC);
CREATE INDEX agreements_plan_id   ON agreements (plan_id, create_time DESC, id DESC);
CREATE INDEX agreements_state     ON agreements (state, create_time DESC, id DESC);
CREATE INDEX agreements_sub_mchid ON agreements (sub_mchid, create_time DESC, id DESC);

CREATE TABLE notifications (
    id                TEXT PRIMARY KEY,
    event_type        TEXT NOT NULL,
    summary           TEXT NOT NULL,
    create_time       INTEGER,
    receive_time      INTEGER,
    outcome           TEXT NOT NULL,
    out_contract_code TEXT NOT NULL,
    contract_id       TEXT NOT NULL,
    resource          BLOB -- the decrypted resource: stored, never logged
) STRICT;

CREATE INDEX notifications_out_contract_code ON notifications (out_contract_code);
CREATE INDEX notifications_contract_id       ON notifications (contract_id);

CREATE TABLE wechat_calls (
    id          INTEGER PRIMARY KEY,
    time        INTEGER,
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    http_status INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    duration_ns INTEGER NOT NULL,
    error       TEXT    NOT NULL
) STRICT;

CREATE INDEX wechat_calls_time ON wechat_calls (time);
