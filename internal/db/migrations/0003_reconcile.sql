-- 0003: reconciliation. When the reconciler next asks WeChat about an open
-- agreement or charge, and how often it asked (its backoff); the intents of
-- WeChat calls that no record makes durable. Times are INTEGER unix
-- nanoseconds UTC; NULL is the zero time, here "no check scheduled".

ALTER TABLE agreements ADD COLUMN next_check_time INTEGER;
ALTER TABLE agreements ADD COLUMN check_attempts  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charges    ADD COLUMN next_check_time INTEGER;
ALTER TABLE charges    ADD COLUMN check_attempts  INTEGER NOT NULL DEFAULT 0;

-- Every open record of an older papayd is due at once, so the reconciler
-- looks at each of them once; final records are never due.
UPDATE agreements SET next_check_time = create_time WHERE state IN ('PENDING', 'SIGNED');
UPDATE charges    SET next_check_time = create_time WHERE state IN ('PENDING', 'PROCESSING');

-- The due scans: open records by next check time. The indexes hold the open
-- records only, so a scan costs what is open, not what was ever recorded
-- (NULL sorts first and a range on next_check_time skips it). A query uses
-- them when its WHERE repeats the condition; without statistics SQLite
-- prefers the state indexes and a sort, so the queries name them (INDEXED
-- BY). The rowid, last in every index, breaks ties in id order.
CREATE INDEX charges_due    ON charges    (next_check_time) WHERE state IN ('PENDING', 'PROCESSING');
CREATE INDEX agreements_due ON agreements (next_check_time) WHERE state IN ('PENDING', 'SIGNED');

-- A WeChat call papayd is about to send, recorded first, so that a crash
-- between sending it and recording its outcome is resumed at start. A row
-- is an open intent; deleting it resolves it. At most one open intent per
-- kind and key. AUTOINCREMENT: an id is never reused, so resolving an
-- intent twice cannot resolve a later one.
CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    create_time INTEGER NOT NULL,
    UNIQUE (kind, key)
) STRICT;
