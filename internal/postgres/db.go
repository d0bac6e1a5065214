package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/papayd/papayd/internal/service"
)

// DB is the PostgreSQL store: a pgx pool on one database.
type DB struct {
	reader // q is the pool: reads outside a transaction
	pool   *pgxpool.Pool
	events *eventHub    // the wake-ups of EventsCommitted (eventhub.go)
	async  *asyncWriter // the writes queued without waiting (async.go)
}

// querier is what *pgxpool.Pool and pgx.Tx have in common: the read
// methods run on either.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader implements the read interfaces of service over a querier: the
// pool for *DB, the transaction for tx.
type reader struct {
	q querier
}

// DB is a service.Store (and its transactions service.Tx: tx.go).
var _ service.Store = (*DB)(nil)

// Open connects to the PostgreSQL database at url (postgres://...) with a
// pool and applies the migrations it has not recorded (see Migrate). The
// pool prepares each statement once per connection and caches it (pgx's
// default query mode).
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	var seen int64
	if err := pool.QueryRow(ctx, maxEventSeqSQL).Scan(&seen); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &DB{reader: reader{q: pool}, pool: pool, events: startEventHub(pool, uint64(seen)),
		async: startAsyncWriter(pool)}, nil
}

// Close writes what TouchKey, RecordAuditEntry and RecordWeChatCall
// queued (later ones return ErrClosed), stops the events listener and
// closes the pool, waiting for the connections in use to return.
func (db *DB) Close() error {
	db.async.close()
	db.events.close()
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}
