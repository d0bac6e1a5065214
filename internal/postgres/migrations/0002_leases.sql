-- 0002: leases, so that replicas on one database share the reconciler's
-- work and the webhook endpoints (see Leases in the package doc). Only
-- nullable columns, a new table and indexes are added: a papayd of the
-- previous release runs on this schema unchanged (it neither reads nor
-- writes them), so it may restart on it during a rolling upgrade:
-- min-reader: 1
--
-- A record claimed by ClaimDue holds its claimer in lease_owner until
-- lease_until (BIGINT unix nanoseconds UTC, as every time). NULL in both:
-- never claimed, or released.
ALTER TABLE charges    ADD COLUMN lease_owner TEXT, ADD COLUMN lease_until BIGINT;
ALTER TABLE agreements ADD COLUMN lease_owner TEXT, ADD COLUMN lease_until BIGINT;
ALTER TABLE refunds    ADD COLUMN lease_owner TEXT, ADD COLUMN lease_until BIGINT;
ALTER TABLE intents    ADD COLUMN lease_owner TEXT, ADD COLUMN lease_until BIGINT;

-- ReleaseClaims finds an owner's claims here: only the records claimed and
-- not released are in these indexes, so they stay small.
CREATE INDEX charges_leased    ON charges    (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX agreements_leased ON agreements (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX refunds_leased    ON refunds    (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX intents_leased    ON intents    (lease_owner) WHERE lease_owner IS NOT NULL;

-- The named leases of ClaimLease (one per webhook endpoint): a row is held
-- by owner until until (unix nanoseconds UTC); an expired row is taken over
-- by the next claimer, a released one is deleted.
CREATE TABLE leases (
    name  TEXT   PRIMARY KEY,
    owner TEXT   NOT NULL,
    until BIGINT NOT NULL
);
