-- 0010: webhooks. An endpoint receives the events of its types and
-- sub-merchants (JSON arrays of strings, '[]': all) created after it; its
-- signing secret is kept as is (whsec_<base64>), for the signer needs it:
-- the database file is readable by its owner only. Endpoints are marked
-- DELETED, never removed, so their deliveries stay readable. A delivery is
-- one event to one endpoint; next_attempt_time is set exactly while it is
-- PENDING. Times are INTEGER unix nanoseconds UTC.

CREATE TABLE webhook_endpoints (
    id             TEXT    PRIMARY KEY CHECK (id <> ''),
    url            TEXT    NOT NULL CHECK (url <> ''),
    event_types    TEXT    NOT NULL CHECK (json_valid(event_types) AND json_type(event_types) = 'array'),
    sub_mchids     TEXT    NOT NULL CHECK (json_valid(sub_mchids) AND json_type(sub_mchids) = 'array'),
    secret         TEXT    NOT NULL CHECK (secret LIKE 'whsec\_%' ESCAPE '\'),
    state          TEXT    NOT NULL CHECK (state IN ('ENABLED', 'DISABLED', 'DELETED')),
    disable_reason TEXT    NOT NULL,
    cursor         INTEGER NOT NULL CHECK (cursor >= 0), -- the last event sequence taken
    create_time    INTEGER NOT NULL,
    update_time    INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id                INTEGER PRIMARY KEY,
    endpoint_id       TEXT    NOT NULL REFERENCES webhook_endpoints (id),
    event_id          TEXT    NOT NULL CHECK (event_id <> ''),
    event_sequence    INTEGER NOT NULL CHECK (event_sequence >= 0),
    event_type        TEXT    NOT NULL,
    sub_mchid         TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts          INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_time INTEGER CHECK ((state = 'PENDING') = (next_attempt_time IS NOT NULL)),
    last_attempt_time INTEGER,          -- NULL: never attempted
    last_status       INTEGER NOT NULL, -- 0: no answer
    last_error        TEXT    NOT NULL,
    create_time       INTEGER NOT NULL,
    update_time       INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
) STRICT;

-- An endpoint's deliveries by state in event order (the engine's head of
-- line, ?state=FAILED), and an event's deliveries (Redeliver).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state, event_sequence);
CREATE INDEX webhook_deliveries_event    ON webhook_deliveries (event_id);
