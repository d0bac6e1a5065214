package db

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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

// TestPostedWritesRunBeforeClose: RecordWeChatCall does not wait for its
// commit, but Close runs everything queued, and a failure reaches the
// callback instead of vanishing.
func TestPostedWritesRunBeforeClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var failures atomic.Int32
	for i := range n {
		c := service.WeChatCall{Method: "POST", Path: fmt.Sprintf("/v3/%d", i), HTTPStatus: 200}
		if err := db.RecordWeChatCall(t.Context(), c, func(error) { failures.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// A posted function that fails is reported, not dropped.
	failed := make(chan error, 1)
	if err := db.writer.post(t.Context(), func(*tx) error { return errors.New("disk on fire") },
		func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; err == nil || err.Error() != "disk on fire" {
		t.Errorf("failed posted write reported %v", err)
	}
	if got := failures.Load(); got != 0 {
		t.Errorf("%d audit rows failed", got)
	}
	if err := db.RecordWeChatCall(t.Context(), service.WeChatCall{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordWeChatCall after Close = %v, want ErrClosed", err)
	}

	db, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.read.QueryRowContext(t.Context(), `SELECT count(*) FROM wechat_calls`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Errorf("%d audit rows after Close, want %d", rows, n)
	}
}
