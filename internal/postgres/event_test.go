package postgres

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

var evTime = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// appendEvents appends es in one transaction.
func appendEvents(t *testing.T, db *DB, es ...service.Event) {
	t.Helper()
	inTx(t, db, func(tx Tx) error {
		for _, e := range es {
			if err := tx.AppendEvent(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// sequences returns the sequences of es.
func sequences(es []service.Event) []uint64 {
	var seqs []uint64
	for _, e := range es {
		seqs = append(seqs, e.Sequence)
	}
	return seqs
}

// TestEvents is internal/db's TestEvents on this store: append, a rolled
// back append, get, the filters, the page size, pruning and the expired
// cursor, and numbers never given twice after everything was pruned.
func TestEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	a := fullAgreement("C1", "W1", evTime)
	a.SubMchID = "m1"
	c := fullCharge("T1", "X1", evTime)
	c.SubMchID = "m2"
	an := service.Anomaly{Kind: "MISMATCH", OutTradeNo: "T1", Detail: "d", Time: evTime}
	want := []service.Event{
		{Type: service.EventAgreementSigned, CreateTime: evTime, SubMchID: "m1", Agreement: &a},
		{Type: service.EventChargeSucceeded, CreateTime: evTime.Add(time.Hour), SubMchID: "m2", Charge: &c},
		{Type: service.EventAnomalyDetected, CreateTime: evTime.Add(2 * time.Hour), SubMchID: "m2", Anomaly: &an},
	}
	appendEvents(t, db, want...)
	// A rolled back append leaves no trace.
	boom := errors.New("boom")
	if err := db.InTx(ctx, func(tx Tx) error {
		if err := tx.AppendEvent(ctx, want[0]); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got, err := db.ListEvents(ctx, service.EventFilter{PageSize: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("list: %d, %v", len(got), err)
	}
	for i := range want {
		want[i].Sequence, want[i].ID = uint64(i+1), got[i].ID
		if len(got[i].ID) != 30 || got[i].ID[:4] != "evt_" {
			t.Errorf("id %q", got[i].ID)
		}
		byID, err := db.EventByID(ctx, got[i].ID)
		if err != nil {
			t.Fatalf("EventByID(%s): %v", got[i].ID, err)
		}
		if diff := cmp.Diff(got[i], byID); diff != "" {
			t.Errorf("EventByID(%s) (-listed +got):\n%s", got[i].ID, diff)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if _, err := db.EventByID(ctx, "evt_nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	for _, tc := range []struct {
		f    service.EventFilter
		want []uint64
	}{
		{service.EventFilter{}, []uint64{1, 2, 3}},
		{service.EventFilter{AfterSequence: 1}, []uint64{2, 3}},
		{service.EventFilter{PageSize: 1, AfterSequence: 1}, []uint64{2}},
		{service.EventFilter{PageSize: 2}, []uint64{1, 2}},
		{service.EventFilter{Types: []service.EventType{service.EventAnomalyDetected, service.EventAgreementSigned}}, []uint64{1, 3}},
		{service.EventFilter{Types: []service.EventType{service.EventRefundCreated}}, nil},
		{service.EventFilter{SubMchID: "m2"}, []uint64{2, 3}},
		{service.EventFilter{SubMchID: "m2", PageSize: 1, AfterSequence: 2}, []uint64{3}},
		{service.EventFilter{SubMchIDs: []string{"m1", "m9"}}, []uint64{1}},
		{service.EventFilter{SubMchIDs: []string{"m1", "m2"}, SubMchID: "m2", Types: []service.EventType{service.EventChargeSucceeded}}, []uint64{2}},
		{service.EventFilter{SubMchIDs: []string{"m1"}, SubMchID: "m2"}, nil},
		{service.EventFilter{AfterSequence: 3}, nil},
		{service.EventFilter{AfterSequence: 1 << 63}, nil},
	} {
		es, err := db.ListEvents(ctx, tc.f)
		if err != nil {
			t.Fatalf("%+v: %v", tc.f, err)
		}
		if seqs := sequences(es); !cmp.Equal(tc.want, seqs) {
			t.Errorf("%+v: %v, want %v", tc.f, seqs, tc.want)
		}
	}

	// Pruning: a prefix, older than the bound, and the cursors below it expire.
	if n, err := db.PruneEvents(ctx, evTime.Add(90*time.Minute), 1); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if n, err := db.PruneEvents(ctx, evTime.Add(90*time.Minute), 10); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if n, err := db.PruneEvents(ctx, evTime.Add(90*time.Minute), 10); err != nil || n != 0 {
		t.Fatalf("prune again: %d %v", n, err)
	}
	if _, err := db.EventByID(ctx, got[0].ID); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("pruned event by id: %v", err)
	}
	for _, f := range []service.EventFilter{{AfterSequence: 1}, {AfterSequence: 1, SubMchID: "nobody"}} {
		if _, err := db.ListEvents(ctx, f); !errors.Is(err, service.ErrEventCursorExpired) {
			t.Fatalf("expired cursor %+v: %v", f, err)
		}
	}
	for _, after := range []uint64{0, 2} {
		if es, err := db.ListEvents(ctx, service.EventFilter{AfterSequence: after}); err != nil || !cmp.Equal(sequences(es), []uint64{3}) {
			t.Fatalf("after %d: %v %v", after, sequences(es), err)
		}
	}
	// Every row pruned: the horizon still expires old cursors, and numbers
	// are never given twice.
	if n, err := db.PruneEvents(ctx, evTime.Add(24*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("prune all: %d %v", n, err)
	}
	if _, err := db.ListEvents(ctx, service.EventFilter{AfterSequence: 2}); !errors.Is(err, service.ErrEventCursorExpired) {
		t.Fatalf("expired cursor, empty table: %v", err)
	}
	appendEvents(t, db, want[0])
	if es, err := db.ListEvents(ctx, service.EventFilter{AfterSequence: 3}); err != nil || !cmp.Equal(sequences(es), []uint64{4}) {
		t.Fatalf("after pruning all: %v %v", sequences(es), err)
	}
}

func TestAppendEventTimeOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	for _, at := range []time.Time{{}, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := db.InTx(ctx, func(tx Tx) error {
			return tx.AppendEvent(ctx, service.Event{Type: service.EventChargeCreated, CreateTime: at})
		})
		if err == nil {
			t.Errorf("create time %v: appended", at)
		}
	}
	if es, err := db.ListEvents(ctx, service.EventFilter{}); err != nil || len(es) != 0 {
		t.Errorf("list: %v %v", sequences(es), err)
	}
}

// TestEventResourceAgreesWithSQLite: the same events appended to both
// stores are stored as the same JSON text, byte for byte ({"agreement":…},
// {"charge":…}, {"anomaly":…}, {"refund":…}), and read back alike.
func TestEventResourceAgreesWithSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	path := filepath.Join(t.TempDir(), "papayd.db")
	lite, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	a := fullAgreement("C1", "W1", evTime)
	c := fullCharge("T1", "X1", evTime)
	an := service.Anomaly{Kind: "MISMATCH", OutTradeNo: "T1", Detail: "d \u0000 \"q\" <&>", Time: evTime.In(shanghai)}
	r := service.Refund{OutRefundNo: "R1", OutTradeNo: "T1", Merchant: service.Merchant{SubMchID: "m1"},
		Amount: service.Money{Total: 1<<53 + 1, Currency: "HKD"}, State: service.RefundAbnormal,
		RecvAccount: "招商银行信用卡0403", CreateTime: evTime, SuccessTime: evTime.Add(7).In(shanghai)}
	es := []service.Event{
		{Type: service.EventAgreementSigned, CreateTime: evTime, SubMchID: a.SubMchID, Agreement: &a},
		{Type: service.EventChargeSucceeded, CreateTime: evTime.Add(1).In(shanghai), SubMchID: c.SubMchID, Charge: &c},
		{Type: service.EventAnomalyDetected, CreateTime: evTime.Add(2), Anomaly: &an},
		{Type: service.EventRefundSucceeded, CreateTime: evTime.Add(3), SubMchID: "m1", Refund: &r},
	}
	appendEvents(t, pg, es...)
	if err := lite.InTx(ctx, func(tx service.Tx) error {
		for _, e := range es {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := lite.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for seq := range len(es) {
		var want, got string
		if err := raw.QueryRowContext(ctx, `SELECT resource FROM events WHERE sequence = ?`, seq+1).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if err := pg.pool.QueryRow(ctx, `SELECT resource FROM events WHERE sequence = $1`, seq+1).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("event %d resource:\n postgres %s\n sqlite   %s", seq+1, got, want)
		}
	}
	got, err := pg.ListEvents(ctx, service.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range es {
		es[i].Sequence, es[i].ID = uint64(i+1), got[i].ID
	}
	if diff := cmp.Diff(es, got); diff != "" {
		t.Errorf("read back (-appended +got):\n%s", diff)
	}
}

// TestObserveEvents: the hook is told the types of each commit that
// appended events, and of nothing else.
func TestObserveEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	var told [][]service.EventType
	db.ObserveEvents(func(types []service.EventType) { told = append(told, types) })
	appendEvents(t, db, service.Event{Type: service.EventChargeCreated, CreateTime: evTime},
		service.Event{Type: service.EventChargeSucceeded, CreateTime: evTime})
	inTx(t, db, func(tx Tx) error { return tx.CreateAgreement(ctx, fullAgreement("C1", "", evTime)) })
	_ = db.InTx(ctx, func(tx Tx) error {
		_ = tx.AppendEvent(ctx, service.Event{Type: service.EventChargeClosed, CreateTime: evTime})
		return errors.New("rolled back")
	})
	want := [][]service.EventType{{service.EventChargeCreated, service.EventChargeSucceeded}}
	if diff := cmp.Diff(want, told); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}
