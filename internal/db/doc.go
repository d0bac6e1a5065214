// Package db is the SQLite implementation of service.Store, on the pure-Go
// driver modernc.org/sqlite (no cgo).
//
// Open puts every pragma in the DSN, so each pooled connection gets them, and
// applies the numbered migrations embedded from migrations/*.sql, each once,
// in its own transaction, recorded in schema_migrations.
//
// Concurrency: the database is in WAL mode. Write transactions (InTx,
// RecordWeChatCall) run on one dedicated connection, so writers of one
// process queue in database/sql, bounded by their context, instead of
// spinning in SQLite's busy handler; busy_timeout and BEGIN IMMEDIATE cover
// writers of other processes. Reads outside a transaction use a separate
// read-only pool and run beside the writer.
//
// Encoding: times are INTEGER unix nanoseconds in UTC (they order as
// integers), the zero time is NULL and reads back as the zero time, and
// times come back in UTC. An empty contract id or transaction id is stored
// as the empty string; partial unique indexes make the non-empty ones
// unique. Money is INTEGER in the currency's minor unit, never REAL. A
// charge's promotion detail is a JSON array in a TEXT column, with JSON
// names fixed by this package; none (nil or empty) is NULL and reads back
// as nil.
//
// Errors: a missing row is service.ErrNotFound, a unique-key violation is
// service.ErrConflict (detected by SQLite's extended result code), a page
// token this package did not issue for the same filter is
// service.ErrInvalidPageToken.
package db
