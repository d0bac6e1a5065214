package db

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// readNotification reads a notification back; the Store has no reader yet.
func readNotification(t *testing.T, db *DB, id string) service.NotificationRecord {
	t.Helper()
	var n service.NotificationRecord
	err := db.read.QueryRowContext(t.Context(), `SELECT id, event_type, summary, create_time, receive_time,
		outcome, out_contract_code, contract_id, out_trade_no, transaction_id, out_refund_no, resource
		FROM notifications WHERE id = ?`, id).Scan(
		&n.ID, &n.EventType, &n.Summary, timeDest{&n.CreateTime}, timeDest{&n.ReceiveTime},
		&n.Outcome, &n.OutContractCode, &n.ContractID, &n.OutTradeNo, &n.TransactionID, &n.OutRefundNo, &n.Resource)
	if err != nil {
		t.Fatalf("read notification %s: %v", id, err)
	}
	return n
}

func TestInsertNotification(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	n := service.NotificationRecord{
		ID: "EV-2018-001", EventType: service.EventContractSigned, Summary: "signed",
		CreateTime:  time.Date(2026, 3, 1, 10, 0, 0, 1, shanghai),
		ReceiveTime: time.Date(2026, 3, 1, 2, 0, 1, 999, time.UTC),
		Outcome:     service.OutcomeApplied, OutContractCode: "OCC1", ContractID: "C1",
		Resource: []byte(`{"contract_id":"C1"}`),
		// OutTradeNo and TransactionID stay empty: a PAPAY.* event has none.
	}
	inTx(t, db, func(tx service.Tx) error { return tx.InsertNotification(ctx, n) })
	if diff := cmp.Diff(n, readNotification(t, db, n.ID)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	dup := n
	dup.Outcome = service.OutcomeNoop
	err := db.InTx(ctx, func(tx service.Tx) error { return tx.InsertNotification(ctx, dup) })
	if !errors.Is(err, service.ErrConflict) {
		t.Errorf("duplicate: err = %v, want ErrConflict", err)
	}
	if got := readNotification(t, db, n.ID).Outcome; got != n.Outcome {
		t.Errorf("outcome after duplicate = %s, want %s", got, n.Outcome)
	}
}

func TestInsertTransactionNotification(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	ns := []service.NotificationRecord{{
		ID: "EV-2", EventType: service.EventTransactionSuccess, Summary: "paid",
		CreateTime:  time.Date(2026, 3, 1, 10, 0, 0, 1, shanghai),
		ReceiveTime: time.Date(2026, 3, 1, 2, 0, 1, 999, time.UTC),
		Outcome:     service.OutcomeAnomaly, ContractID: "C1", OutTradeNo: "T1", TransactionID: "X1",
		Resource: []byte(`{"transaction_id":"X1"}`),
	}, {
		// A second notification of the same trade is its own record.
		ID: "EV-3", EventType: service.EventTransactionSuccess, Outcome: service.OutcomeNoop,
		OutTradeNo: "T1", TransactionID: "X1",
	}}
	inTx(t, db, func(tx service.Tx) error {
		for _, n := range ns {
			if err := tx.InsertNotification(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range ns {
		if diff := cmp.Diff(n, readNotification(t, db, n.ID)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", n.ID, diff)
		}
	}
	var count int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE out_trade_no = 'T1'`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 2 {
		t.Errorf("%d notifications of T1, want 2", count)
	}
}

// TestInsertRefundNotification: a REFUND.* notification keeps the refund
// it was about, and its charge, for the operator's look-ups.
func TestInsertRefundNotification(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	ns := []service.NotificationRecord{{
		ID: "EV-R1", EventType: service.NotificationRefundSuccess, Summary: "refunded",
		CreateTime:  time.Date(2026, 3, 2, 10, 0, 0, 1, shanghai),
		ReceiveTime: time.Date(2026, 3, 2, 2, 0, 1, 999, time.UTC),
		Outcome:     service.OutcomeApplied, OutTradeNo: "T1", TransactionID: "X1", OutRefundNo: "R1",
		Resource: []byte(`{"refund_id":"W1"}`),
	}, {
		// A second notification of the same refund is its own record.
		ID: "EV-R2", EventType: service.NotificationRefundAbnormal, Outcome: service.OutcomeNoop,
		OutTradeNo: "T1", OutRefundNo: "R1",
	}}
	inTx(t, db, func(tx service.Tx) error {
		for _, n := range ns {
			if err := tx.InsertNotification(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range ns {
		if diff := cmp.Diff(n, readNotification(t, db, n.ID)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", n.ID, diff)
		}
	}
	var count int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE out_refund_no = 'R1'`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != 2 {
		t.Errorf("%d notifications of R1, want 2", count)
	}
}

// The exactly-once check reads the primary key, and the table has no other
// index: each would cost a b-tree insert per notification that no query
// reads back.
func TestNotificationIndexes(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	checkPlan(t, db, "notification recorded", notificationRecordedSQL, "sqlite_autoindex_notifications_1")
	rows, err := db.read.QueryContext(t.Context(), `SELECT name FROM pragma_index_list('notifications')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"sqlite_autoindex_notifications_1"}, names); diff != "" {
		t.Errorf("indexes of notifications (-want +got):\n%s", diff)
	}
}
