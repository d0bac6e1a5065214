package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultLockConns is the size of the lock pool when Open is given no
// WithLockConns: how many keys one replica holds locked at once.
const DefaultLockConns = 64

// unlockTimeout bounds an unlock: the unlock statement, or closing the
// connection when it fails.
const unlockTimeout = 5 * time.Second

// Option configures Open.
type Option func(*options)

type options struct {
	lockConns int32
}

// WithLockConns sets the size of the lock pool, the connections LockKey
// holds its locks on (DefaultLockConns when not given): a replica holds at
// most n keys locked at once, and LockKey beyond that waits for an unlock.
// n below 1 is DefaultLockConns.
func WithLockConns(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.lockConns = int32(min(n, 1<<30))
		}
	}
}

// A key lock is a session advisory lock in the two-int4 key space, whose
// keys never meet the single-bigint ones of migrationLock and eventsLock
// (PostgreSQL keeps the two spaces apart): the 64-bit hash of
// 'papayd/'||key, split into its high and its (sign-extended) low 32 bits.
// Two keys share a lock only when their hashes collide, which serializes
// them and breaks nothing.
const (
	keyLockArgs  = `FROM (SELECT hashtextextended('papayd/' || $1::text, 0) AS h) k`
	lockKeySQL   = `SELECT pg_advisory_lock((h >> 32)::int4, ((h << 32) >> 32)::int4) ` + keyLockArgs
	unlockKeySQL = `SELECT pg_advisory_unlock((h >> 32)::int4, ((h << 32) >> 32)::int4) ` + keyLockArgs
)

// keyLocks are the locks of LockKey: a pool of its own, so that held locks
// never take the connections of the queries, and the locks held, so that
// close can end their sessions.
type keyLocks struct {
	pool    *pgxpool.Pool
	closing context.Context // done once close started
	stop    context.CancelFunc

	mu     sync.Mutex
	closed bool
	held   map[*heldLock]struct{}
}

// heldLock is one locked key: its session's connection, nil once unlocked
// or closed.
type heldLock struct {
	key  string
	mu   sync.Mutex
	conn *pgxpool.Conn
}

func newKeyLocks(pool *pgxpool.Pool) *keyLocks {
	ctx, stop := context.WithCancel(context.Background())
	return &keyLocks{pool: pool, closing: ctx, stop: stop, held: map[*heldLock]struct{}{}}
}

// LockKey locks key across every replica on the database: it takes a
// connection from the lock pool and a session advisory lock on it, both
// held until unlock. It waits for a replica holding key to unlock it, or
// for its session to end, which PostgreSQL ends when the replica dies. If
// ctx ends first it returns ctx's error, and the connection of the wait is
// closed (the lock may have been granted as the wait was canceled). After
// Close it returns ErrClosed. unlock releases the lock and returns the
// connection to the lock pool, or closes it when the release fails (ending
// the session releases the lock); it takes no context (it is bounded by
// unlockTimeout), and calls after the first do nothing.
func (db *DB) LockKey(ctx context.Context, key string) (unlock func(), err error) {
	return db.locks.lock(ctx, key)
}

func (l *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("lock %s: %w", key, ErrClosed)
	}
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.closing, cancel)
	defer stop()

	conn, err := l.pool.Acquire(wait)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, l.waitErr(ctx, err))
	}
	if _, err := conn.Exec(wait, lockKeySQL, key); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("lock %s: %w", key, l.waitErr(ctx, err))
	}
	h := &heldLock{key: key, conn: conn}
	l.mu.Lock()
	if l.closed { // close did not see h: end its session here
		l.mu.Unlock()
		closeConn(conn)
		return nil, fmt.Errorf("lock %s: %w", key, ErrClosed)
	}
	l.held[h] = struct{}{}
	l.mu.Unlock()
	return func() { l.unlock(h) }, nil
}

// waitErr is the error of a wait that failed with err: ctx's when it
// ended, ErrClosed when close canceled the wait, err otherwise.
func (l *keyLocks) waitErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case l.closing.Err() != nil:
		return ErrClosed
	}
	return err
}

// unlock releases h's lock and returns its connection to the pool, or
// closes the connection when the release fails or finds no lock to
// release.
func (l *keyLocks) unlock(h *heldLock) {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn := h.conn
	if conn == nil {
		return
	}
	h.conn = nil
	l.mu.Lock()
	delete(l.held, h)
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var released bool
	if err := conn.QueryRow(ctx, unlockKeySQL, h.key).Scan(&released); err != nil || !released {
		closeConn(conn)
		return
	}
	conn.Release()
}

// close cancels the waits of LockKey, ends the sessions of the locks held
// (which releases them: unlock then does nothing) and closes the lock
// pool.
func (l *keyLocks) close() {
	l.mu.Lock()
	l.closed = true
	held := make([]*heldLock, 0, len(l.held))
	for h := range l.held {
		held = append(held, h)
	}
	clear(l.held)
	l.mu.Unlock()
	l.stop()
	for _, h := range held {
		h.mu.Lock()
		if h.conn != nil {
			closeConn(h.conn)
			h.conn = nil
		}
		h.mu.Unlock()
	}
	l.pool.Close()
}

// closeConn takes conn out of its pool and closes it, ending its session
// and so every lock it holds.
func closeConn(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = conn.Hijack().Close(ctx)
}
