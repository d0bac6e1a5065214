package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// TestConcurrentDuplicatesConflict: two transactions that both check a
// key is free and then record it, overlapping (as two replicas handling
// the same notification, or recording the same intent), end with exactly
// one recorded and the other refused with service.ErrConflict, whether
// PostgreSQL reports the clash as a unique violation or as a
// serialization failure that InTx retries.
func TestConcurrentDuplicatesConflict(t *testing.T) {
	t.Parallel()
	key := service.NotificationKey{SpMchID: "SP", SubMchID: "SUB", ID: "N1"}
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// check reads what the write will clash on; record writes it.
		check  func(ctx context.Context, tx Tx) error
		record func(ctx context.Context, tx Tx) error
		count  func(t *testing.T, db *DB) int
	}{{
		name: "notification",
		check: func(ctx context.Context, tx Tx) error {
			seen, err := tx.NotificationRecorded(ctx, key)
			if err == nil && seen {
				return service.ErrConflict // recorded: the caller would skip it
			}
			return err
		},
		record: func(ctx context.Context, tx Tx) error {
			return tx.InsertNotification(ctx, service.NotificationRecord{
				ID: key.ID, SpMchID: key.SpMchID, SubMchID: key.SubMchID, Outcome: service.OutcomeApplied})
		},
		count: func(t *testing.T, db *DB) int { return countRows(t, db, `SELECT count(*) FROM notifications`) },
	}, {
		name: "intent",
		check: func(ctx context.Context, tx Tx) error {
			_, err := tx.AgreementByContractID(ctx, "C1") // any read: it takes the snapshot
			if errors.Is(err, service.ErrNotFound) {
				return nil
			}
			return err
		},
		record: func(ctx context.Context, tx Tx) error {
			_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentTerminate, Key: "C1", CreateTime: created})
			return err
		},
		count: func(t *testing.T, db *DB) int { return countRows(t, db, `SELECT count(*) FROM intents`) },
	}, {
		name: "refund",
		check: func(ctx context.Context, tx Tx) error {
			_, err := tx.RefundByOutRefundNo(ctx, "R1")
			if errors.Is(err, service.ErrNotFound) {
				return nil
			}
			if err == nil {
				return service.ErrConflict
			}
			return err
		},
		record: func(ctx context.Context, tx Tx) error { return tx.CreateRefund(ctx, fullRefund("R1", "", created)) },
		count:  func(t *testing.T, db *DB) int { return countRows(t, db, `SELECT count(*) FROM refunds`) },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := openTestDB(t)
			// Both first runs take their snapshot before either writes.
			var ready sync.WaitGroup
			ready.Add(2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() {
					first := true
					errs[i] = db.InTx(ctx, func(tx Tx) error {
						if err := tt.check(ctx, tx); err != nil {
							return err
						}
						if first {
							first = false
							ready.Done()
							ready.Wait()
						}
						return tt.record(ctx, tx)
					})
					if first { // failed before the barrier: do not hold the other
						ready.Done()
					}
				})
			}
			wg.Wait()
			var ok, conflicts int
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, service.ErrConflict):
					conflicts++
				default:
					t.Errorf("err = %v, want nil or ErrConflict", err)
				}
			}
			if ok != 1 || conflicts != 1 {
				t.Errorf("%d recorded, %d conflicts (%v); want 1 and 1", ok, conflicts, errs)
			}
			if n := tt.count(t, db); n != 1 {
				t.Errorf("%d rows, want 1", n)
			}
		})
	}
}

// countRows runs a count query on the pool.
func countRows(t *testing.T, db *DB, query string) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
