package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// TestStats: the record counts of a new database are zero, with empty
// maps; after records are written they count each kind by state, the
// anomalies and the open intents (internal/db's TestRefundStats, and the
// other kinds alike).
func TestStats(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	s, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	empty := Stats{Charges: map[string]int64{}, Agreements: map[string]int64{}, Refunds: map[string]int64{}}
	if diff := cmp.Diff(empty, s); diff != "" {
		t.Errorf("stats of a new database (-want +got):\n%s", diff)
	}

	seedRefunds(t, db)
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var cs []service.Charge
	for i, state := range []service.ChargeState{service.ChargeSucceeded, service.ChargeSucceeded, service.ChargeClosed} {
		c := fullCharge(string(rune('A'+i)), "X"+string(rune('A'+i)), created)
		c.State = state
		cs = append(cs, c)
	}
	createCharges(t, db, cs...)
	inTx(t, db, func(tx Tx) error {
		for i, state := range []service.AgreementState{service.AgreementSigned, service.AgreementTerminated} {
			a := fullAgreement(string(rune('A'+i)), "C"+string(rune('A'+i)), created)
			a.State = state
			if err := tx.CreateAgreement(ctx, a); err != nil {
				return err
			}
		}
		for range 2 {
			if err := tx.InsertAnomaly(ctx, service.Anomaly{Kind: "MISMATCH", Time: created}); err != nil {
				return err
			}
		}
		_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "A", CreateTime: created})
		return err
	})
	var resolved int64
	inTx(t, db, func(tx Tx) error {
		var err error
		resolved, err = tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "B", CreateTime: created})
		return err
	})
	inTx(t, db, func(tx Tx) error { return tx.DeleteIntent(ctx, resolved) })

	s, err = db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		Charges:    map[string]int64{"SUCCEEDED": 2, "CLOSED": 1},
		Agreements: map[string]int64{"SIGNED": 1, "TERMINATED": 1},
		Refunds:    map[string]int64{"PENDING": 1, "PROCESSING": 1, "SUCCEEDED": 3, "FAILED": 1, "CLOSED": 1, "ABNORMAL": 1},
		Anomalies:  2,
		Intents:    1,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}
