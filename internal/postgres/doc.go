// Package postgres is the PostgreSQL implementation of service.Store, on
// github.com/jackc/pgx/v5 and its pool (pgxpool), for papayd run as several
// replicas on one database. internal/db is the SQLite one; both implement the
// store interface internal/service declares, with the same semantics, and
// the domain does not know which one it runs on.
//
// Open connects a pool to a postgres:// URL (PAPAYD_DATABASE_URL) and
// applies the numbered migrations embedded from migrations/*.sql, each once,
// in its own transaction, recorded in schema_migrations, under a session
// advisory lock (see Migrate), so replicas starting together do not race.
// Each migration names the oldest schema whose papayd may still run on the
// database once it is applied ("-- min-reader: N"; default: itself): a
// migration that only adds names the one before it, so that during a
// rolling upgrade the replicas of the previous release keep running, and
// may restart, on the migrated schema; an older binary is refused
// (ErrSchemaTooNew).
// The pool uses pgx's default query mode: every statement is prepared once
// per connection and cached by its text (the SQL is constant text in a
// const beside its method, with $n parameters).
//
// Encoding: as internal/db, so that a row means the same in both stores.
// Times are BIGINT unix nanoseconds in UTC (internal/db/timecol.go), the
// zero time is NULL and reads back as the zero time, times come back in UTC,
// and a time outside the years 1677 to 2262 is refused. Not timestamptz: it
// holds microseconds only, and every time papayd records keeps its
// nanoseconds (page cursors compare them). Money is BIGINT in the
// currency's minor unit. An empty contract id, transaction id or refund id
// is the empty string; partial unique indexes make the non-empty ones
// unique. JSON columns (a charge's promotion detail, an event's resource,
// an API key's or an endpoint's lists) are TEXT with a CHECK that the text
// is valid JSON of the expected type, not JSONB: papayd never queries
// inside them, and TEXT keeps the bytes it wrote (JSONB reorders keys,
// drops duplicates and refuses \u0000), so an event reads back exactly as
// appended, as it does from SQLite.
//
// Errors: a missing row is service.ErrNotFound, a unique violation (SQLSTATE
// 23505) is service.ErrConflict, a page token this package did not issue for
// the same filter is service.ErrInvalidPageToken. Page tokens are those of
// internal/db, byte for byte (pagetoken.go). A database claimed by another
// mode or sp_mchid is ErrOtherIdentity (identity.go), and a write queued
// after Close is ErrClosed (async.go).
//
// # DESIGN
//
// This section decides how the store stays correct with several papayd
// replicas on one database, under every interleaving.
//
// Isolation and retries. InTx runs fn in one SERIALIZABLE transaction.
// service.Store promises that "write transactions are serialised, so a
// read-modify-write inside fn is safe"; SQLite keeps it with a single
// writer, and SERIALIZABLE keeps it across connections and processes
// without a global lock: PostgreSQL aborts one of two transactions whose
// concurrent run would not be equivalent to some serial order. An abort for
// that (40001 serialization_failure) or a deadlock (40P01
// deadlock_detected), whether from a statement or from COMMIT, rolls the
// transaction back and InTx runs fn again from the start, on a fresh
// transaction, transparently: up to maxAttempts (20) runs in all, sleeping a
// jittered, doubling backoff between them (from 2 ms, at most 50 ms) and
// stopping early when ctx ends. From the third run on, the transaction's
// connection first takes a session advisory lock, the retry lock, and
// holds it until after COMMIT (taken before BEGIN, so the snapshot comes
// after the wait): transactions that keep colliding then run one at a
// time, across replicas, instead of aborting each other again. SSI tracks
// reads by index page, so transactions on different records abort each
// other too (a lookup of a notification that is not there and an insert
// of another beside it, on one page): measured with 8 callers on 2 cores,
// 8 runs were not always enough (0.4% of notifications and CreateCharge
// calls failed in the bench; 8 of 2,000 transactions with 32 writers),
// 20 with the retry lock were (none of 4,000). After the last attempt InTx returns the
// failure, wrapped (errors.Is finds neither ErrConflict nor ErrNotFound in
// it: it is an internal error, and the caller may retry the use case). Any
// other error, and fn's own error, is returned at once without a retry.
// fn may therefore run more than once: it must have no effect outside the
// transaction (the same rule internal/db states: "must not block on
// anything but the database"), and anything it gathers in variables of its
// caller must be reset at its start, as service.Store's InTx comment says.
// Reads outside InTx run on the pool in autocommit (READ COMMITTED, one
// snapshot per statement), as the SQLite store's read pool does.
//
// Per-key serialization across replicas. The domain serializes the use
// cases of one charge, contract or presign with an in-process keyed mutex
// (service/keyedmutex.go: "charge/"+out_trade_no, "contract/"+id,
// "presign/"+code) held across a WeChat call and the transactions around
// it. With replicas that is not enough, and row locks cannot replace it: a
// row lock lives in one transaction, and the use case spans several plus a
// network call. The store provides the lock, LockKey, and the domain
// takes it right after its keyed mutex (so one process waits for a key at
// most once): a session-level pg_advisory_lock on a connection of the lock
// pool, held until unlock, which runs pg_advisory_unlock and returns the
// connection to the pool. The lock pool is a second pgxpool on the same
// URL, of DefaultLockConns (64) connections unless Open is given
// WithLockConns: held locks never take the connections of queries and
// transactions, and a replica holds at most that many keys at once (a
// LockKey beyond waits for an unlock). The lock's key is
// hashtextextended('papayd/' || key, 0) split into two int4 halves, in the
// (int4, int4) key space, which PostgreSQL keeps apart from the bigint one
// of migrationLock and eventsLock, so a key lock never meets those; a
// 64-bit collision of two keys only serializes two unrelated keys, never
// breaks correctness. The wait ends with ctx: LockKey returns ctx's error
// and closes the connection (the server may have granted the lock as the
// wait was canceled; ending the session releases it), and Close cancels
// every wait (ErrClosed). When pg_advisory_unlock fails (bounded by
// unlockTimeout, 5 s, not by a caller's ctx), unlock closes the connection
// instead. PostgreSQL releases the locks of a session that ends: a replica
// that dies or loses a lock connection frees its keys, and Close ends the
// sessions of the locks still held (their unlock then does nothing). A
// replica whose lock connection died is not told: it goes on as if it held
// the key, and the next holder may work on the key beside it, so their
// WeChat calls may overlap; their transactions stay correct, since
// SERIALIZABLE aborts the one that raced. The lock is taken before InTx,
// so same-key transactions never overlap and do not abort each other.
// Inside transactions no SELECT ... FOR UPDATE is needed for correctness:
// under SERIALIZABLE a read-modify-write of the charge or refund row that
// raced another is an abort and a retry; FOR UPDATE there would only turn
// the abort into a wait followed by the same abort (under SERIALIZABLE a
// row updated after the snapshot cannot be locked). pg_advisory_xact_lock
// is not used per key either: taken inside a SERIALIZABLE transaction it
// waits after the snapshot was taken, so it orders nothing.
//
// Event sequences, gap-safe across replicas. A reader that has listed
// sequence n must never later find a committed event below n. A BIGSERIAL
// alone breaks that: numbers are drawn at INSERT, transactions commit in
// any order, and replica B's event 41 can commit after replica A's 42 was
// read. Decided: AppendEvent buffers the events in the transaction; InTx,
// after fn returns nil and just before COMMIT, flushes them: it takes
// pg_advisory_xact_lock(eventsLock) (a constant), draws their numbers from
// the sequence events_sequence (nextval, in append order) and inserts them,
// then commits, which releases the lock. PostgreSQL makes a transaction
// visible before it releases its locks, and the next flusher draws its
// numbers only after it holds the lock, so sequence order is commit order
// and a snapshot that sees sequence n sees every committed sequence below
// it. A sequence object, not a counter row: an UPDATE of a counter row
// under SERIALIZABLE aborts every transaction that waited for it (the row
// changed after its snapshot), so every concurrent appender would retry
// once; nextval and advisory locks are outside the snapshot and SSI, so a
// waiter just waits. A transaction that draws numbers and then aborts
// (COMMIT can fail with 40001) burns them: sequences may skip numbers, but
// a skipped number is never committed later, which is what readers need
// ("rising in commit order", never "dense"). The cost: event-appending
// transactions serialize, across all replicas, over the flush (a lock, one
// INSERT of the events, COMMIT and its WAL flush): roughly one commit
// round-trip each, some hundreds to a few thousand per second. The rest
// of fn runs concurrently. Nearly every write use case appends an event,
// so this is the store's write ceiling; it is the SQLite store's single
// writer, narrowed to the commit.
//
// ListEvents bounds its reads: one statement (one snapshot) reads the
// pruning horizon and the page, `sequence > $after ... ORDER BY sequence
// LIMIT $pageSize` on the primary key (with the type and sub-merchant terms
// as internal/db has them, sub_mchid through the (sub_mchid, sequence)
// index), so a page reads at most pageSize matching rows in index order and
// needs no watermark: what the snapshot sees is a prefix of the committed
// sequences. A positive AfterSequence below the horizon is
// ErrEventCursorExpired, as in SQLite.
//
// EventsCommitted across replicas. The flush also runs
// NOTIFY papayd_events (pg_notify, payload the highest sequence), which
// PostgreSQL delivers at commit, to every session listening. Each replica
// keeps one connection outside the pool in LISTEN papayd_events, and a
// goroutine closing and replacing the wake channel on every notification
// (and on each local commit that appended events, without waiting for the
// round trip). Notifications can be lost when that connection drops, so
// on reconnecting it wakes every reader once (a spurious wake costs a
// ListEvents that finds nothing), and a poll fallback wakes them every
// second when SELECT max(sequence) FROM events moved since the last wake
// (not the sequence's last_value: it counts numbers drawn by transactions
// not committed yet, or never). A reader takes the channel before it reads,
// as the interface says, so no commit is missed between the two.
//
// Writes off the caller's path. TouchKey, RecordAuditEntry and
// RecordWeChatCall return once queued, as in internal/db. Each replica
// runs one writer goroutine on a bounded queue (async.go): it sends what
// is queued as one pgx batch (one round trip, one commit), and when that
// batch fails it reruns its statements one at a time, so each row gets its
// own outcome. A touch is `UPDATE api_keys SET last_used_time = $t WHERE
// id = $id AND (last_used_time IS NULL OR last_used_time < $t)` in READ
// COMMITTED: an UPDATE that waited for another replica's row lock
// re-checks the WHERE on the committed row, so LastUsedTime never goes
// back whatever order the replicas' touches commit in; a batch collapses
// one key's touches to the latest and sends them in key id order, so two
// replicas' batches cannot deadlock. Close writes the queue before it
// closes the pool. These must not be called inside InTx: fn may run more
// than once.
//
// Leases. The reconciler's due scans (charges, agreements, refunds) and
// the open intents are work items every replica sees; each replica claims
// what a pass works on with ClaimDue and lets it go with ReleaseClaims
// when the pass is over. Migration 0002 adds lease_owner TEXT and
// lease_until BIGINT (unix nanoseconds, as every time; NULL in both: not
// leased) to charges, agreements, refunds and intents, nullable, so the
// previous release runs on the schema unchanged. ClaimDue runs one
// statement per kind in one READ COMMITTED transaction (not InTx's
// SERIALIZABLE: there concurrent claims would abort each other), for
// charges:
//
//	UPDATE charges SET lease_owner = @owner, lease_until = @until
//	WHERE id IN (SELECT id FROM charges
//	    WHERE next_check_time IS NOT NULL AND next_check_time <= @now
//	    AND (lease_until IS NULL OR lease_until <= @now OR lease_owner = @owner)
//	    ORDER BY next_check_time, id LIMIT @limit FOR UPDATE SKIP LOCKED)
//	RETURNING id, ...
//
// (@until is now + l.TTL), and the same for agreements and refunds, and
// for intents without the due term and the limit, ordered by id. The
// subquery reads the partial index *_due, as the due scans do
// (plan_test.go). SKIP LOCKED lets replicas claim disjoint sets without
// waiting for each other: a row another claim is taking (or a transaction
// is writing) is skipped; a row another claim leased and committed after
// this statement's snapshot is re-checked when locked, found leased, and
// dropped, and the scan goes on to the next row, so LIMIT still counts
// free rows. RETURNING does not keep the subquery's
// order: ClaimDue sorts the rows as the due scans order them (and intents
// by id). A lease is free when it expired at the caller's now (lease_until
// <= now, the caller's clock, not the database's, as in internal/db), and
// an owner's own leases are claimed again, and extended. A replica that
// dies loses its claims when they expire, and another replica takes them
// over. ReleaseClaims clears the lease columns of the owner's rows in one
// statement, through the partial indexes *_leased (lease_owner, of the
// leased rows only). The domain's writes (UpdateCharge, UpdateAgreement,
// UpdateRefund) list their columns and leave the lease columns as they
// are; DeleteIntent deletes the row with its lease. The work itself still
// runs under LockKey and re-reads the record in its transaction, so a
// lease that expired while its holder was still working costs a duplicate
// WeChat query, never a wrong state. A claim or release that writes a row
// a SERIALIZABLE transaction read is, for that transaction, a concurrent
// update: at worst an abort and a retry.
//
// Named leases (ClaimLease, one per webhook endpoint, renewed by claiming
// again) are rows of the table leases (name TEXT PRIMARY KEY, owner TEXT,
// until BIGINT), taken with one statement:
//
//	INSERT INTO leases AS l (name, owner, until) VALUES (@name, @owner, @until)
//	ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
//	WHERE l.until <= @now OR l.owner = excluded.owner
//	RETURNING owner
//
// A row comes back when the lease was free, expired at now or already the
// owner's; none when another owner holds it. Concurrent claims of one name
// serialize on the row, so exactly one wins. ReleaseLease deletes the row
// only when owner holds it.
package postgres
