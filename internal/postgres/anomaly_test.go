package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// readAnomalies reads every anomaly back, in insertion order; the Store has
// no reader for them.
func readAnomalies(t *testing.T, db *DB) []service.Anomaly {
	t.Helper()
	rows, err := db.pool.Query(t.Context(),
		`SELECT time, kind, out_trade_no, notification_id, detail FROM anomalies ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var as []service.Anomaly
	for rows.Next() {
		var a service.Anomaly
		if err := rows.Scan(timeDest{&a.Time}, &a.Kind, &a.OutTradeNo, &a.NotificationID, &a.Detail); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return as
}

// errRollback is what a test's fn returns to roll its transaction back.
var errRollback = errors.New("roll back")

func TestInsertAnomaly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	as := []service.Anomaly{{
		Kind: "AMOUNT_MISMATCH", OutTradeNo: "T1", NotificationID: "EV-1",
		Detail: "notified 100 HKD, recorded 99 HKD", Time: time.Date(2026, 3, 1, 10, 0, 0, 7, shanghai),
	}, {
		Kind: "CONTRACT_MISMATCH", OutTradeNo: "T2", Detail: "answer names contract C9",
	}}
	inTx(t, db, func(tx Tx) error {
		for _, a := range as {
			if err := tx.InsertAnomaly(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	// The same anomaly again is appended, not refused.
	inTx(t, db, func(tx Tx) error { return tx.InsertAnomaly(ctx, as[0]) })
	if diff := cmp.Diff(append(as, as[0]), readAnomalies(t, db)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Rolled back with its transaction.
	_ = db.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertAnomaly(ctx, as[1]); err != nil {
			t.Fatal(err)
		}
		return errRollback
	})
	if got := len(readAnomalies(t, db)); got != 3 {
		t.Errorf("%d anomalies after a rolled back insert, want 3", got)
	}
}
