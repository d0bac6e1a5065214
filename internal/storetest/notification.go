package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// notification is a processed TRANSACTION.SUCCESS notification id of
// sub-merchant subMchID.
func notification(id, subMchID string) service.NotificationRecord {
	return service.NotificationRecord{
		ID: id, SpMchID: "1230000109", SubMchID: subMchID, EventType: service.EventTransactionSuccess, Summary: "paid",
		CreateTime: base.In(shanghai), ReceiveTime: base.Add(time.Second + 1), Outcome: service.OutcomeApplied,
		OutTradeNo: "T1", TransactionID: "X1", Resource: []byte(`{"transaction_id":"X1"}`),
	}
}

// anomaly is a disagreement about charge outTradeNo.
func anomaly(outTradeNo string) service.Anomaly {
	return service.Anomaly{Kind: "AMOUNT_MISMATCH", OutTradeNo: outTradeNo, NotificationID: "N1", Detail: "100 != 99", Time: base}
}

func testNotifications(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	n := notification("N1", "m1")
	key := service.NotificationKey{SpMchID: n.SpMchID, SubMchID: n.SubMchID, ID: n.ID}
	recorded := func(tx service.Tx, k service.NotificationKey) bool {
		t.Helper()
		ok, err := tx.NotificationRecorded(ctx, k)
		if err != nil {
			t.Fatalf("NotificationRecorded(%+v): %v", k, err)
		}
		return ok
	}
	inTx(t, s, func(tx service.Tx) error {
		if recorded(tx, key) {
			t.Errorf("NotificationRecorded before InsertNotification = true, want false")
		}
		if err := tx.InsertNotification(ctx, n); err != nil {
			return err
		}
		if !recorded(tx, key) {
			t.Errorf("NotificationRecorded in the inserting tx = false, want true")
		}
		return nil
	})
	// Another merchant's notification of the same id is another one.
	other := []service.NotificationKey{
		{SpMchID: n.SpMchID, SubMchID: "m2", ID: n.ID},
		{SpMchID: "1230000110", SubMchID: n.SubMchID, ID: n.ID},
		{SpMchID: n.SpMchID, SubMchID: n.SubMchID, ID: "N2"},
		{SubMchID: n.SubMchID, ID: n.ID},
	}
	inTx(t, s, func(tx service.Tx) error {
		if !recorded(tx, key) {
			t.Errorf("NotificationRecorded after commit = false, want true")
		}
		for _, k := range other {
			if recorded(tx, k) {
				t.Errorf("NotificationRecorded(%+v) = true, want false", k)
			}
		}
		return nil
	})
	err := s.InTx(ctx, func(tx service.Tx) error {
		d := notification("N1", "m1")
		d.Outcome, d.Summary = service.OutcomeDuplicate, "again"
		return tx.InsertNotification(ctx, d)
	})
	checkErr(t, "InsertNotification of a recorded key", err, service.ErrConflict)
	inTx(t, s, func(tx service.Tx) error {
		for _, k := range other {
			n := notification(k.ID, k.SubMchID)
			n.SpMchID = k.SpMchID
			if err := tx.InsertNotification(ctx, n); err != nil {
				t.Errorf("InsertNotification(%+v): %v, want nil", k, err)
			}
		}
		return nil
	})
}

func testAnomalies(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	// An anomaly has no key: the same one twice is two records.
	for i := range 2 {
		if err := s.InTx(ctx, func(tx service.Tx) error { return tx.InsertAnomaly(ctx, anomaly("T1")) }); err != nil {
			t.Errorf("InsertAnomaly #%d: %v, want nil", i+1, err)
		}
	}
	if err := s.InTx(ctx, func(tx service.Tx) error {
		return tx.InsertAnomaly(ctx, service.Anomaly{Kind: "UNMATCHED", Detail: "no charge", Time: base.In(shanghai)})
	}); err != nil {
		t.Errorf("InsertAnomaly without a charge: %v, want nil", err)
	}
}

// openIntents reads the open intents and fails the test on error.
func openIntents(t *testing.T, s service.Store) []service.Intent {
	t.Helper()
	ins, err := s.OpenIntents(t.Context())
	if err != nil {
		t.Fatalf("OpenIntents: %v", err)
	}
	return ins
}

// createIntent records in in its own transaction and returns its id.
func createIntent(t *testing.T, s service.Store, in service.Intent) int64 {
	t.Helper()
	var id int64
	inTx(t, s, func(tx service.Tx) error {
		var err error
		id, err = tx.CreateIntent(t.Context(), in)
		return err
	})
	return id
}

func testIntents(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	if got := openIntents(t, s); len(got) != 0 {
		t.Errorf("OpenIntents of a new store = %v, want none", got)
	}
	created := base.In(shanghai)
	in := []service.Intent{
		{Kind: service.IntentTerminate, Key: "C1", Note: "user moved away", CreateTime: created},
		{Kind: service.IntentClose, Key: "T1", CreateTime: created.Add(time.Second)},
		// The same key under another kind is another intent.
		{Kind: service.IntentClose, Key: "C1", CreateTime: created.Add(2 * time.Second)},
		{ID: 999, Kind: service.IntentClose, Key: "T2", CreateTime: created.Add(3 * time.Second)}, // ID is ignored
	}
	for i := range in {
		id := createIntent(t, s, in[i])
		for j := range i {
			if id == in[j].ID {
				t.Errorf("intent %d: id %d, the id of intent %d", i, id, j)
			}
		}
		in[i].ID = id
	}
	if diff := cmp.Diff(in, openIntents(t, s)); diff != "" {
		t.Errorf("open intents, oldest first (-want +got):\n%s", diff)
	}
	for _, got := range openIntents(t, s) {
		checkUTC(t, "open intents", map[string]time.Time{"CreateTime": got.CreateTime})
	}

	// One open intent per kind and key; the refused transaction leaves
	// nothing behind.
	_, err := tx1(s, t, func(tx service.Tx) (int64, error) {
		if _, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "T9", CreateTime: created}); err != nil {
			return 0, err
		}
		return tx.CreateIntent(ctx, service.Intent{Kind: service.IntentTerminate, Key: "C1", Note: "again", CreateTime: created})
	})
	checkErr(t, "CreateIntent of an open kind and key", err, service.ErrConflict)
	if diff := cmp.Diff(in, openIntents(t, s)); diff != "" {
		t.Errorf("open intents after a conflict (-want +got):\n%s", diff)
	}

	// Resolved, an intent leaves the open ones; a resolved or unknown one
	// is not found.
	inTx(t, s, func(tx service.Tx) error { return tx.DeleteIntent(ctx, in[0].ID) })
	for _, id := range []int64{in[0].ID, 0, 1 << 40} {
		_, err = tx1(s, t, func(tx service.Tx) (int64, error) { return 0, tx.DeleteIntent(ctx, id) })
		checkErr(t, fmt.Sprintf("DeleteIntent(%d) of a resolved or unknown intent", id), err, service.ErrNotFound)
	}
	if diff := cmp.Diff(in[1:], openIntents(t, s)); diff != "" {
		t.Errorf("open intents after a delete (-want +got):\n%s", diff)
	}

	// Its kind and key can be recorded again. The newest intent resolved
	// first, its id is not given again: a stale DeleteIntent of it cannot
	// resolve the new one.
	inTx(t, s, func(tx service.Tx) error { return tx.DeleteIntent(ctx, in[3].ID) })
	again := service.Intent{Kind: service.IntentTerminate, Key: "C1", Note: "again", CreateTime: created.Add(4 * time.Second)}
	again.ID = createIntent(t, s, again)
	for _, old := range in {
		if again.ID == old.ID {
			t.Errorf("the intent recorded again has the id %d of an earlier one", again.ID)
		}
	}
	_, err = tx1(s, t, func(tx service.Tx) (int64, error) { return 0, tx.DeleteIntent(ctx, in[3].ID) })
	checkErr(t, "a stale DeleteIntent", err, service.ErrNotFound)
	if diff := cmp.Diff([]service.Intent{in[1], in[2], again}, openIntents(t, s)); diff != "" {
		t.Errorf("open intents at the end, oldest first (-want +got):\n%s", diff)
	}
}

func testIntentNeedsCreateTime(t *testing.T, open Opener) {
	s := open(t)
	_, err := tx1(s, t, func(tx service.Tx) (int64, error) {
		return tx.CreateIntent(t.Context(), service.Intent{Kind: service.IntentClose, Key: "T1"})
	})
	if err == nil {
		t.Fatalf("CreateIntent without a create time: err = nil, want an error")
	}
	if got := openIntents(t, s); len(got) != 0 {
		t.Errorf("open intents after the refused one: %v, want none", got)
	}
}

// tx1 runs fn in a transaction of s and returns its value and InTx's
// error.
func tx1[T any](s service.Store, t *testing.T, fn func(service.Tx) (T, error)) (T, error) {
	var v T
	err := s.InTx(t.Context(), func(tx service.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v, err
}
