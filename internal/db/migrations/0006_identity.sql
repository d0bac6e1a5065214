-- 0006: the database belongs to one papayd identity, the mode (sandbox or
-- live) and the service provider's merchant id (sp_mchid) of the first
-- papayd that claimed it. A sandbox record must never be served, or
-- reconciled against WeChat, by a live papayd, nor one merchant's by
-- another's. One row at most; a database migrated from an older schema has
-- none until the first papayd opens it (it adopts the database).

CREATE TABLE identity (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    mode       TEXT NOT NULL CHECK (mode IN ('sandbox', 'live')),
    sp_mchid   TEXT NOT NULL CHECK (sp_mchid <> ''),
    claim_time INTEGER NOT NULL -- unix nanoseconds UTC
) STRICT;
