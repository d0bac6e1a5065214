-- 0009: the outbox. One row per change of an agreement or a charge, and
-- per anomaly, written in the transaction of the change. Rows are never
-- updated; the oldest are pruned after the retention.
--
-- sequence is AUTOINCREMENT so that a number is never given twice, even
-- after every row was pruned: readers keep it as their cursor. resource is
-- the JSON of the record as it was after the change. create_time is
-- INTEGER unix nanoseconds UTC.

CREATE TABLE events (
    sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE, -- evt_...
    type        TEXT    NOT NULL,        -- agreement.signed, charge.succeeded, ...
    create_time INTEGER NOT NULL,
    sub_mchid   TEXT    NOT NULL,        -- '' for an anomaly of no charge
    resource    TEXT    NOT NULL         -- JSON: {"agreement": ...} or {"charge": ...} or {"anomaly": ...}
) STRICT;

-- A sub-merchant's events in sequence order.
CREATE INDEX events_sub_mchid ON events (sub_mchid, sequence);

-- The highest sequence pruned: a cursor below it has missed events.
CREATE TABLE event_horizon (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL
) STRICT;
INSERT INTO event_horizon (id, pruned_through) VALUES (1, 0);
