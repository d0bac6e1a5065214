package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// The retry policy of InTx (see DESIGN in the package doc): at most
// maxAttempts runs of fn, sleeping between two a jittered backoff that
// starts at minBackoff and doubles up to maxBackoff. From the
// escalateAfter+1st run on, the transaction first takes the retry lock, so
// that transactions which keep colliding run one after another instead of
// aborting each other again.
const (
	maxAttempts   = 20
	escalateAfter = 2
	minBackoff    = 2 * time.Millisecond
	maxBackoff    = 50 * time.Millisecond
)

// retryLock is the key of the session advisory lock an escalated retry
// holds from before its BEGIN to after its COMMIT ("papayd" and 2): taken
// inside the transaction, the wait would come after the snapshot, and the
// transaction would start stale.
const retryLock int64 = 0x7061706179640002

// Tx is service.Tx: InTx takes the domain's transaction functions as they
// are (they may run more than once: see InTx).
type Tx = service.Tx

var _ service.Tx = (*tx)(nil)

// tx implements Tx on one transaction.
type tx struct {
	reader                // q is the pgx.Tx; the write methods use it too
	events []pendingEvent // appended, inserted by flushEvents before COMMIT
}

// InTx runs fn in one SERIALIZABLE transaction: its changes commit when fn
// returns nil and roll back when fn returns an error, which InTx returns
// unchanged, or panics (the panic is re-raised). When the transaction is
// aborted by a serialization failure (40001) or a deadlock (40P01), in a
// statement fn ran (and returned wrapped) or at COMMIT, InTx rolls back and
// runs fn again on a new transaction, up to maxAttempts runs in all, after
// a short jittered backoff, the later runs under the retry lock (one at a
// time across replicas); it then returns the last failure. ctx ending
// stops the retries. fn may therefore run more than once: it must have no
// effect outside the transaction, must not keep the Tx after it
// returns, and must not block on anything but the database.
func (db *DB) InTx(ctx context.Context, fn func(Tx) error) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := db.runTx(ctx, fn, attempt > escalateAfter)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("transaction aborted %d times: %w", attempt, err)
		}
		// Sleep in [backoff/2, backoff), so that aborted rivals spread out.
		d := backoff/2 + rand.N(backoff/2)
		select {
		case <-ctx.Done():
			return fmt.Errorf("transaction aborted, not retried: %w (%w)", err, context.Cause(ctx))
		case <-time.After(d):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runTx runs fn once in a SERIALIZABLE transaction and commits it when fn
// returns nil; escalated, its connection holds the retry lock from before
// BEGIN (so its snapshot is taken once it holds it) to after COMMIT.
func (db *DB) runTx(ctx context.Context, fn func(Tx) error, escalated bool) (err error) {
	var ptx pgx.Tx
	if escalated {
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if _, err := conn.Exec(ctx, lockSQL, retryLock); err != nil {
			// The wait may have been canceled after the lock was granted:
			// ending the session releases it.
			_ = conn.Hijack().Close(context.WithoutCancel(ctx))
			return fmt.Errorf("retry lock: %w", err)
		}
		defer func() {
			if _, uerr := conn.Exec(context.WithoutCancel(ctx), unlockSQL, retryLock); uerr != nil {
				_ = conn.Hijack().Close(context.WithoutCancel(ctx))
				return
			}
			conn.Release()
		}()
		ptx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
	} else if ptx, err = db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = ptx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = ptx.Rollback(context.WithoutCancel(ctx)) // a no-op after a failed COMMIT
		}
	}()
	t := &tx{reader: reader{q: ptx}}
	if err := fn(t); err != nil {
		return err
	}
	// Under the events lock from here to the end of COMMIT (event.go).
	through, err := t.flushEvents(ctx, ptx)
	if err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if through > 0 {
		db.events.published(through, t.eventTypes())
	}
	return nil
}
