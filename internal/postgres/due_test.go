package postgres

import (
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// dueNow is the now of the due scan tests.
var dueNow = time.Date(2026, 4, 1, 12, 0, 0, 500, time.UTC)

// dueRow is one record of a due scan test: its key, whether its state is
// open, and its next check time as an offset from dueNow (nil: none).
type dueRow struct {
	key  string
	open bool
	next *time.Duration
}

func at(d time.Duration) *time.Duration { return &d }

// dueRows covers the boundaries. In due order: B (1h before), E (1h
// before too, recorded after B: the id breaks the tie), I (final, its
// re-check due), D, A (at now exactly). Not due: C (1ns after now), F (no
// check), G and H (final, no re-check left).
var dueRows = []dueRow{
	{"A", true, at(0)},
	{"B", true, at(-time.Hour)},
	{"C", true, at(1)},
	{"D", true, at(-time.Minute)},
	{"E", true, at(-time.Hour)},
	{"F", true, nil},
	{"G", false, nil},
	{"H", false, nil},
	{"I", false, at(-10 * time.Minute)},
}

// seedDue creates a charge and an agreement for each of dueRows, the
// charges' open states alternating PENDING and PROCESSING, the agreements'
// PENDING and SIGNED, and the final ones in each final state.
func seedDue(t *testing.T, db *DB) (map[string]service.Charge, map[string]service.Agreement) {
	t.Helper()
	openC := []service.ChargeState{service.ChargePending, service.ChargeProcessing}
	finalC := []service.ChargeState{service.ChargeSucceeded, service.ChargeFailed, service.ChargeClosed}
	openA := []service.AgreementState{service.AgreementPending, service.AgreementSigned}
	finalA := []service.AgreementState{service.AgreementTerminated, service.AgreementExpired}
	cs, as := map[string]service.Charge{}, map[string]service.Agreement{}
	inTx(t, db, func(tx Tx) error {
		for i, r := range dueRows {
			// Created in the order the scan must not follow.
			created := dueNow.Add(-time.Duration(len(dueRows)-i) * 24 * time.Hour)
			c := fullCharge(r.key, "", created)
			a := fullAgreement(r.key, "", created)
			c.NextCheckTime, a.NextCheckTime = time.Time{}, time.Time{}
			if r.next != nil {
				c.NextCheckTime = dueNow.Add(*r.next).In(shanghai)
				a.NextCheckTime = c.NextCheckTime
			}
			if r.open {
				c.State, a.State = openC[i%len(openC)], openA[i%len(openA)]
			} else {
				c.State, a.State = finalC[i%len(finalC)], finalA[i%len(finalA)]
			}
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
			if err := tx.CreateAgreement(t.Context(), a); err != nil {
				return err
			}
			cs[r.key], as[r.key] = c, a
		}
		return nil
	})
	return cs, as
}
