package db

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

var errCallers = errors.New("the caller's own sentinel")

// TestConcurrentDuplicateNotifications: the same notification delivered 50
// times at once is recorded once; every other delivery sees ErrConflict,
// none fails with SQLITE_BUSY.
func TestConcurrentDuplicateNotifications(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.InTx(t.Context(), func(tx service.Tx) error {
				return tx.InsertNotification(t.Context(), service.NotificationRecord{ID: "N1", Outcome: service.OutcomeApplied})
			})
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, service.ErrConflict):
			t.Errorf("goroutine %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d inserts succeeded, want 1", ok)
	}
}

// TestConcurrentReadModifyWrite: 50 increments, split over two DB handles
// on one file (as two processes would be), each a read-modify-write in
// InTx. None is lost and none fails with SQLITE_BUSY: within a handle they
// queue for the writer connection, across handles BEGIN IMMEDIATE waits
// under busy_timeout.
func TestConcurrentReadModifyWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	a := fullAgreement("OCC1", "", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	a.CheckAttempts = 0
	inTx(t, dbs[0], func(tx service.Tx) error { return tx.CreateAgreement(ctx, a) })

	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := dbs[i%2].InTx(ctx, func(tx service.Tx) error {
				cur, err := tx.AgreementByOutContractCode(ctx, "OCC1")
				if err != nil {
					return err
				}
				cur.CheckAttempts++
				return tx.UpdateAgreement(ctx, cur)
			})
			if err != nil {
				t.Errorf("increment %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := dbs[1].AgreementByOutContractCode(ctx, "OCC1")
	if err != nil {
		t.Fatal(err)
	}
	if got.CheckAttempts != n {
		t.Errorf("counter = %d after %d increments", got.CheckAttempts, n)
	}
}
