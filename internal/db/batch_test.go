package db

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/papayd/papayd/internal/service"
)

// TestGroupCommitIsolatesEachTransaction: many concurrent transactions
// share commits; the ones that fail or panic roll back alone, the others
// are all durable, and every caller gets its own result.
func TestGroupCommitIsolatesEachTransaction(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := t.Context()
	const n = 200
	errFail := errors.New("fail")
	results := make([]error, n)
	panicked := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					panicked[i] = true
				}
			}()
			results[i] = db.InTx(ctx, func(tx service.Tx) error {
				if err := tx.InsertNotification(ctx, service.NotificationRecord{ID: fmt.Sprintf("N%03d", i), Outcome: service.OutcomeApplied}); err != nil {
					return err
				}
				switch {
				case i%7 == 0:
					panic("boom")
				case i%3 == 0:
					return errFail
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		var want error
		if i%3 == 0 && i%7 != 0 {
			want = errFail
		}
		if panicked[i] != (i%7 == 0) || (i%7 != 0 && results[i] != want) {
			t.Errorf("transaction %d: result %v, panicked %v", i, results[i], panicked[i])
		}
		// Only the clean ones are there.
		err := db.InTx(ctx, func(tx service.Tx) error {
			return tx.InsertNotification(ctx, service.NotificationRecord{ID: fmt.Sprintf("N%03d", i), Outcome: service.OutcomeApplied})
		})
		committed := errors.Is(err, service.ErrConflict)
		if committed != (i%3 != 0 && i%7 != 0) {
			t.Errorf("transaction %d committed: %v", i, committed)
		}
	}
}

func TestWritesAfterClose(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(t.Context(), func(service.Tx) error { return nil })
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("InTx after Close = %v, want ErrClosed", err)
	}
}
