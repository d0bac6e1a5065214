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
	locks  *keyLocks    // the locks of LockKey, on a pool of their own (lock.go)
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
// default query mode). A second pool, of DefaultLockConns connections
// unless opts say otherwise (WithLockConns), holds the locks of LockKey; it
// connects on demand.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	o := options{lockConns: DefaultLockConns}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	lockCfg := cfg.Copy()
	lockCfg.MaxConns, lockCfg.MinConns, lockCfg.MinIdleConns = o.lockConns, 0, 0
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
	lockPool, err := pgxpool.NewWithConfig(ctx, lockCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect lock pool: %w", err)
	}
	return &DB{reader: reader{q: pool}, pool: pool, events: startEventHub(pool, uint64(seen)),
		async: startAsyncWriter(pool), locks: newKeyLocks(lockPool)}, nil
}

// Close writes what TouchKey, RecordAuditEntry and RecordWeChatCall
// queued (later ones return ErrClosed), stops the events listener and
// closes the pool, waiting for the connections in use to return. It ends
// the sessions of the keys LockKey holds, which releases them, cancels the
// waits of LockKey, and closes the lock pool.
func (db *DB) Close() error {
	db.locks.close()
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
