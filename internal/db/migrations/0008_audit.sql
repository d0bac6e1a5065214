-- 0008: the audit trail. One row per mutating call, written in the same
-- transaction as its effect, and per call refused before it changed
-- anything (unauthenticated, forbidden, invalid). Times are INTEGER unix
-- nanoseconds UTC.

CREATE TABLE audit_entries (
    id         INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    key_id     TEXT    NOT NULL, -- '' when the call had no key (PAPAYD_AUTH=none, or refused without one)
    key_name   TEXT    NOT NULL,
    peer       TEXT    NOT NULL, -- the caller's network address
    method     TEXT    NOT NULL, -- the use case, e.g. CreateCharge
    resource   TEXT    NOT NULL, -- e.g. charges/ORDER-1, agreements/PA..., keys/k1
    outcome    TEXT    NOT NULL  -- OK, or the reason of the refusal or failure
) STRICT;

-- The page order of ListAuditEntries, alone and under each filter.
CREATE INDEX audit_entries_page     ON audit_entries (time DESC, id DESC);
CREATE INDEX audit_entries_resource ON audit_entries (resource, time DESC, id DESC);
CREATE INDEX audit_entries_key_id   ON audit_entries (key_id, time DESC, id DESC);
