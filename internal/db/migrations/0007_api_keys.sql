-- 0007: API keys. A key's token is "pk_<id>_<secret>"; only the SHA-256
-- hash of its secret is kept. scopes and sub_mchids are JSON arrays of
-- strings (sub_mchids '[]': every sub-merchant). Keys are revoked, never
-- deleted, so that the audit of the calls made with one keeps its name.

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY CHECK (id <> ''),
    name           TEXT NOT NULL CHECK (name <> ''),
    scopes         TEXT NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    sub_mchids     TEXT NOT NULL CHECK (json_valid(sub_mchids) AND json_type(sub_mchids) = 'array'),
    secret_hash    BLOB NOT NULL CHECK (length(secret_hash) = 32),
    rate_limit     REAL NOT NULL CHECK (rate_limit >= 0),
    create_time    INTEGER NOT NULL, -- unix nanoseconds UTC, as every time column
    expire_time    INTEGER,          -- NULL: never
    last_used_time INTEGER,          -- NULL: never used
    revoke_time    INTEGER           -- NULL: not revoked
) STRICT;
