package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// TestAsyncBadRowCostsNoOther: a queued row the database refuses (an
// audit entry without a time) is reported to its own callback, and the
// rows queued around it, in the same batch or not, are written.
func TestAsyncBadRowCostsNoOther(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	const n = 50
	failed := make(chan error, 2*n) // room for every row: a failing writer must not block
	for i := range n {
		e := service.AuditEntry{Time: at, Method: "GetCharge", Resource: fmt.Sprintf("charges/T%d", i), Outcome: "NOT_FOUND"}
		if i == n/2 {
			e.Time = time.Time{} // NULL: refused by NOT NULL
		}
		if err := db.RecordAuditEntry(ctx, e, func(err error) { failed <- err }); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordWeChatCall(ctx, service.WeChatCall{Method: "GET", Path: "/v3/x", Time: at}, func(err error) { failed <- err }); err != nil {
			t.Fatal(err)
		}
	}
	flushAsync(t, db)
	close(failed)
	var errs []error
	for err := range failed {
		errs = append(errs, err)
	}
	if len(errs) != 1 || sqlState(errs[0]) != "23502" {
		t.Fatalf("failures %v, want one not-null violation", errs)
	}
	if got := countRows(t, db, `SELECT count(*) FROM audit_entries`); got != n-1 {
		t.Errorf("%d audit entries, want %d", got, n-1)
	}
	if got := countRows(t, db, `SELECT count(*) FROM wechat_calls`); got != n {
		t.Errorf("%d wechat calls, want %d", got, n)
	}
}

// TestCloseWritesTheQueue: Close returns after the queued rows are
// written; writes after Close are ErrClosed.
func TestCloseWritesTheQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := openTestDB(t).pool.Config().ConnString()
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	const n = 300
	for i := range n {
		e := service.AuditEntry{Time: at.Add(time.Duration(i)), Method: "GetCharge", Outcome: "NOT_FOUND"}
		if err := db.RecordAuditEntry(ctx, e, func(err error) { t.Error(err) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordAuditEntry(ctx, service.AuditEntry{Time: at}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordAuditEntry after Close: %v, want ErrClosed", err)
	}
	if err := db.TouchKey(ctx, "k", at); !errors.Is(err, ErrClosed) {
		t.Errorf("TouchKey after Close: %v, want ErrClosed", err)
	}
	pool := newPool(t, url)
	var got int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%d entries after Close, want %d", got, n)
	}
}
