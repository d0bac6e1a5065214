// Package db is the SQLite implementation of service.Store, on the pure-Go
// driver modernc.org/sqlite (no cgo).
//
// Open puts every pragma in the DSN, so each pooled connection gets them, and
// applies the numbered migrations embedded from migrations/*.sql, each once,
// in its own transaction, recorded in schema_migrations.
//
// Concurrency: the database is in WAL mode. Write transactions (InTx, and
// RecordWeChatCall, which does not wait for its commit) run on one
// dedicated connection, batched by one writer goroutine (group commit,
// batch.go); busy_timeout and BEGIN IMMEDIATE cover other processes
// (papayd backup, an operator's sqlite3). Reads outside a transaction use a separate
// read-only pool and run beside the writer.
//
// Durability: synchronous=FULL, so every commit is on stable storage
// before InTx returns. In WAL mode, NORMAL would only sync at checkpoints,
// and a power loss could take back the last commits while the file stays
// consistent. papayd cannot afford that: it answers a WeChat callback only
// after recording it (WeChat does not resend an acknowledged one), and it
// records an intent before it sends the WeChat call (a lost intent is a
// call nobody resumes). The cost is one fsync per commit, about 0.2 ms on
// the development machine (0.15 to 0.5 ms over NORMAL, for a one-row
// commit), paid on the single writer connection.
//
// Record cache: GetAgreement and GetCharge style reads outside a
// transaction are served from a bounded in-memory cache of recently read
// records, forgotten on every write (cache.go). It relies on this process
// being the file's only writer, which papayd enforces with a lock on its
// data directory; `papayd backup` only reads.
//
// Reconciliation: open agreements (PENDING, SIGNED), charges (PENDING,
// PROCESSING, CLOSING) and refunds (those the service schedules), and
// final ones awaiting a re-check, carry a next check time; DueAgreements,
// DueCharges and DueRefunds read the due ones through
// partial indexes holding only scheduled records, named with INDEXED BY,
// since without statistics SQLite prefers the state index and a sort. NULL
// is "no check scheduled" and is never due. Intents are
// rows of their own table while open; deleting one resolves it, and ids
// are never reused.
//
// Backup: Backup writes a consistent, compact copy with VACUUM INTO on a
// connection of its own, a reader, so writers go on committing meanwhile.
//
// Encoding: times are INTEGER unix nanoseconds in UTC (they order as
// integers), the zero time is NULL and reads back as the zero time, and
// times come back in UTC. An empty contract id, transaction id or refund
// id is stored as the empty string; partial unique indexes make the
// non-empty ones unique. Money is INTEGER in the currency's minor unit, never REAL. A
// charge's promotion detail is a JSON array in a TEXT column, with JSON
// names fixed by this package; none (nil or empty) is NULL and reads back
// as nil.
//
// Errors: a missing row is service.ErrNotFound, a unique-key violation is
// service.ErrConflict (detected by SQLite's extended result code), a page
// token this package did not issue for the same filter is
// service.ErrInvalidPageToken.
package db
