package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// dueChargeNos runs DueCharges and returns the out_trade_nos in order.
func dueChargeNos(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	cs, err := db.DueCharges(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueCharges(%v, %d): %v", now, limit, err)
	}
	var nos []string
	for _, c := range cs {
		nos = append(nos, c.OutTradeNo)
	}
	return nos
}

// dueAgreementCodes runs DueAgreements and returns the out_contract_codes
// in order.
func dueAgreementCodes(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	as, err := db.DueAgreements(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueAgreements(%v, %d): %v", now, limit, err)
	}
	var codes []string
	for _, a := range as {
		codes = append(codes, a.OutContractCode)
	}
	return codes
}

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

// dueScanTests are the scans of seedDue's records and what each finds.
var dueScanTests = []struct {
	name  string
	now   time.Time
	limit int
	want  []string
}{
	{"now", dueNow, 100, []string{"B", "E", "I", "D", "A"}},
	{"now in another zone", dueNow.In(shanghai), 100, []string{"B", "E", "I", "D", "A"}},
	{"limit", dueNow, 3, []string{"B", "E", "I"}},
	{"limit splits a tie", dueNow, 1, []string{"B"}},
	{"1ns before now", dueNow.Add(-1), 100, []string{"B", "E", "I", "D"}},
	{"at the tie", dueNow.Add(-time.Hour), 100, []string{"B", "E"}},
	{"before everything", dueNow.Add(-time.Hour - 1), 100, nil},
	{"1ns after now", dueNow.Add(1), 100, []string{"B", "E", "I", "D", "A", "C"}},
	{"after 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 100, []string{"B", "E", "I", "D", "A", "C"}},
	{"before 1677", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 100, nil},
	{"zero time", time.Time{}, 100, nil},
}

func TestDueCharges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	cs, _ := seedDue(t, db)
	for _, tt := range dueScanTests {
		if diff := cmp.Diff(tt.want, dueChargeNos(t, db, tt.now, tt.limit)); diff != "" {
			t.Errorf("%s, limit %d (-want +got):\n%s", tt.name, tt.limit, diff)
		}
	}

	// Whole rows come back.
	got, err := db.DueCharges(ctx, dueNow, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]service.Charge{cs["B"]}, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	// The index follows updates: a charge that settles with no re-check
	// leaves the scan, one that gets a check time enters it, a rescheduled
	// one moves.
	inTx(t, db, func(tx Tx) error {
		settled := cs["B"]
		settled.State, settled.NextCheckTime = service.ChargeSucceeded, time.Time{}
		scheduled := cs["F"]
		scheduled.NextCheckTime = dueNow.Add(-30 * time.Minute)
		later := cs["E"]
		later.NextCheckTime, later.CheckAttempts = dueNow.Add(time.Hour), 1
		for _, c := range []service.Charge{settled, scheduled, later} {
			if err := tx.UpdateCharge(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if diff := cmp.Diff([]string{"F", "I", "D", "A"}, dueChargeNos(t, db, dueNow, 100)); diff != "" {
		t.Errorf("after updates (-want +got):\n%s", diff)
	}
}

func TestDueAgreements(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	_, as := seedDue(t, db)
	for _, tt := range dueScanTests {
		if diff := cmp.Diff(tt.want, dueAgreementCodes(t, db, tt.now, tt.limit)); diff != "" {
			t.Errorf("%s, limit %d (-want +got):\n%s", tt.name, tt.limit, diff)
		}
	}

	got, err := db.DueAgreements(ctx, dueNow, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]service.Agreement{as["B"]}, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	inTx(t, db, func(tx Tx) error {
		ended := as["B"]
		ended.State, ended.NextCheckTime = service.AgreementTerminated, time.Time{}
		scheduled := as["F"]
		scheduled.NextCheckTime = dueNow.Add(-30 * time.Minute)
		later := as["E"]
		later.NextCheckTime, later.CheckAttempts = dueNow.Add(time.Hour), 1
		for _, a := range []service.Agreement{ended, scheduled, later} {
			if err := tx.UpdateAgreement(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if diff := cmp.Diff([]string{"F", "I", "D", "A"}, dueAgreementCodes(t, db, dueNow, 100)); diff != "" {
		t.Errorf("after updates (-want +got):\n%s", diff)
	}
}

func TestDueLimit(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, n := range []int{0, -1} {
		if _, err := db.DueCharges(t.Context(), dueNow, n); err == nil {
			t.Errorf("DueCharges limit %d: no error", n)
		}
		if _, err := db.DueAgreements(t.Context(), dueNow, n); err == nil {
			t.Errorf("DueAgreements limit %d: no error", n)
		}
	}
}
