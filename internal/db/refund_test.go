package db

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// createRefunds inserts rs in one transaction and fails the test on error.
func createRefunds(t *testing.T, db *DB, rs ...service.Refund) {
	t.Helper()
	inTx(t, db, func(tx service.Tx) error {
		for _, r := range rs {
			if err := tx.CreateRefund(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestRefundZeroValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	r := service.Refund{OutRefundNo: "R0", CreateTime: time.Unix(0, 1).UTC()}
	createRefunds(t, db, r)
	got, err := db.RefundByOutRefundNo(ctx, "R0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The zero time is NULL in the file, not 0: an unscheduled refund is
	// never due.
	var nulls int
	err = db.read.QueryRowContext(ctx, `SELECT (success_time IS NULL) + (update_time IS NULL) +
		(last_send_time IS NULL) + (next_check_time IS NULL) FROM refunds WHERE out_refund_no = 'R0'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if nulls != 4 {
		t.Errorf("%d of success_time, update_time, last_send_time, next_check_time are NULL, want 4", nulls)
	}
}

// TestRefundStats: the record counts include the refunds by state.
func TestRefundStats(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedRefunds(t, db)
	s, err := db.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"PENDING": 1, "PROCESSING": 1, "SUCCEEDED": 3, "FAILED": 1, "CLOSED": 1, "ABNORMAL": 1}
	if diff := cmp.Diff(want, s.Refunds); diff != "" {
		t.Errorf("refunds by state (-want +got):\n%s", diff)
	}
}
