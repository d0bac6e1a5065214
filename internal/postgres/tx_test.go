package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/papayd/papayd/internal/service"
)

// TestInTxRetriesSerializationFailures runs read-modify-writes of one row
// from several goroutines, each holding its transaction open between the
// read and the write, so that they overlap. SERIALIZABLE aborts all but one
// of each overlapping set (40001) and InTx runs them again: no increment
// is lost, and some runs were retries.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	inTx(t, db, func(tx Tx) error { return tx.CreateAgreement(ctx, fullAgreement("OCC1", "", created)) })

	const writers = 4
	var runs atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.InTx(ctx, func(tx Tx) error {
				runs.Add(1)
				a, err := tx.AgreementByOutContractCode(ctx, "OCC1")
				if err != nil {
					return err
				}
				time.Sleep(20 * time.Millisecond) // let the others read too
				a.CheckAttempts++
				return tx.UpdateAgreement(ctx, a)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	a, err := db.AgreementByOutContractCode(ctx, "OCC1")
	if err != nil {
		t.Fatal(err)
	}
	if want := fullAgreement("OCC1", "", created).CheckAttempts + writers; a.CheckAttempts != want {
		t.Errorf("CheckAttempts = %d, want %d: an increment was lost", a.CheckAttempts, want)
	}
	t.Logf("%d writers, %d runs of fn", writers, runs.Load())
	if runs.Load() <= writers {
		t.Errorf("%d runs of fn for %d overlapping writers: no transaction was retried", runs.Load(), writers)
	}
}

func TestInTxGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	var runs int
	err := db.InTx(t.Context(), func(Tx) error {
		runs++
		return &pgconn.PgError{Code: serializationFailure, Message: "synthetic"}
	})
	if sqlState(err) != serializationFailure {
		t.Errorf("err = %v, want the serialization failure", err)
	}
	if runs != maxAttempts {
		t.Errorf("fn ran %d times, want %d", runs, maxAttempts)
	}
}

func TestInTxRetriesDeadlocksOnly(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, tt := range []struct {
		code string
		runs int
	}{{deadlockDetected, 2}, {uniqueViolation, 1}, {"42P01", 1}} {
		runs := 0
		err := db.InTx(t.Context(), func(Tx) error {
			runs++
			if runs == 1 {
				return &pgconn.PgError{Code: tt.code}
			}
			return nil
		})
		if (err == nil) != (tt.runs == 2) || runs != tt.runs {
			t.Errorf("SQLSTATE %s: %d runs, err %v; want %d runs", tt.code, runs, err, tt.runs)
		}
	}
}

func TestInTxStopsRetryingWhenCanceled(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	var runs int
	err := db.InTx(ctx, func(Tx) error {
		runs++
		cancel()
		return &pgconn.PgError{Code: serializationFailure}
	})
	if !errors.Is(err, context.Canceled) || runs != 1 {
		t.Errorf("%d runs, err %v; want 1 run and context.Canceled", runs, err)
	}
}

func TestInTxRollsBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	errFn := errors.New("fn failed")
	runs := 0
	err := db.InTx(ctx, func(tx Tx) error {
		runs++
		if err := tx.CreateAgreement(ctx, fullAgreement("OCC1", "", created)); err != nil {
			return err
		}
		return errFn
	})
	if err != errFn || runs != 1 {
		t.Errorf("err = %v after %d runs, want fn's error unchanged after 1", err, runs)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic re-raised", p)
			}
		}()
		_ = db.InTx(ctx, func(tx Tx) error {
			if err := tx.CreateAgreement(ctx, fullAgreement("OCC2", "", created)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	for _, code := range []string{"OCC1", "OCC2"} {
		if _, err := db.AgreementByOutContractCode(ctx, code); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s after a rolled back transaction: err = %v, want ErrNotFound", code, err)
		}
	}
	// The pool is still usable: no connection was left in a transaction.
	for range 3 * int(db.pool.Config().MaxConns) {
		inTx(t, db, func(tx Tx) error { _, err := tx.AgreementByOutContractCode(ctx, "OCC1"); return ignoreNotFound(err) })
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, service.ErrNotFound) {
		return nil
	}
	return err
}

// TestInTxEscalatesRetries: the runs after the escalateAfter-th hold the
// retry lock (so colliding retries run one at a time), the first ones do
// not, and the lock is let go once the transaction ends.
func TestInTxEscalatesRetries(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	const heldSQL = `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1 AND granted`
	var held []bool
	err := db.InTx(t.Context(), func(x Tx) error {
		var n int
		if err := x.(*tx).q.QueryRow(t.Context(), heldSQL, retryLock).Scan(&n); err != nil {
			return err
		}
		held = append(held, n == 1)
		if len(held) < escalateAfter+2 {
			return &pgconn.PgError{Code: serializationFailure, Message: "synthetic"}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, escalateAfter+2)
	for i := escalateAfter; i < len(want); i++ {
		want[i] = true
	}
	if !slices.Equal(held, want) {
		t.Errorf("retry lock held in runs %v, want %v", held, want)
	}
	conn, err := db.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var free bool
	if err := conn.QueryRow(t.Context(), `SELECT pg_try_advisory_lock($1)`, retryLock).Scan(&free); err != nil || !free {
		t.Fatalf("retry lock after the transaction: free %v, err %v", free, err)
	}
	if _, err := conn.Exec(t.Context(), unlockSQL, retryLock); err != nil {
		t.Fatal(err)
	}
}
