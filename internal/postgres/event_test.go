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
