package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// dueNow is the now of the due scans.
var dueNow = time.Date(2026, 4, 1, 12, 0, 0, 500, time.UTC)

// dueRow is a record of the due scans: its key, whether its state is
// final, and its next check time as an offset from dueNow (nil: none).
type dueRow struct {
	key   string
	final bool
	next  *time.Duration
}

func offset(d time.Duration) *time.Duration { return &d }

// dueRows, in due order at dueNow: B, I (final, its re-check due), D, A
// (at now exactly). Not due: C (1ns after now), F (no check), G (final, no
// re-check).
var dueRows = []dueRow{
	{"A", false, offset(0)},
	{"B", false, offset(-time.Hour)},
	{"C", false, offset(1)},
	{"D", false, offset(-time.Minute)},
	{"F", false, nil},
	{"G", true, nil},
	{"I", true, offset(-10 * time.Minute)},
}

// The states seedDue gives its records: the open ones alternate, the
// final ones take each final state in turn.
var (
	openCharge     = []service.ChargeState{service.ChargePending, service.ChargeProcessing}
	finalCharge    = []service.ChargeState{service.ChargeSucceeded, service.ChargeFailed, service.ChargeClosed}
	openAgreement  = []service.AgreementState{service.AgreementPending, service.AgreementSigned}
	finalAgreement = []service.AgreementState{service.AgreementTerminated, service.AgreementExpired}
	openRefund     = []service.RefundState{service.RefundPending, service.RefundProcessing}
	finalRefund    = []service.RefundState{service.RefundSucceeded, service.RefundFailed, service.RefundClosed}
)

// dueRecords are the records of seedDue, by key.
type dueRecords struct {
	charges    map[string]service.Charge
	agreements map[string]service.Agreement
	refunds    map[string]service.Refund
}

// seedDue creates a charge, an agreement and a refund for each of rows,
// created in the order the scans must not follow, and returns them.
func seedDue(t *testing.T, s service.Store, rows []dueRow) dueRecords {
	t.Helper()
	var d dueRecords
	inTx(t, s, func(tx service.Tx) error {
		d = dueRecords{map[string]service.Charge{}, map[string]service.Agreement{}, map[string]service.Refund{}}
		for i, r := range rows {
			created := dueNow.Add(-time.Duration(len(rows)-i) * 24 * time.Hour)
			c, a, f := FullCharge(r.key, "", created), FullAgreement(r.key, "", created), FullRefund(r.key, "", created)
			c.State, a.State, f.State = openCharge[i%len(openCharge)], openAgreement[i%len(openAgreement)], openRefund[i%len(openRefund)]
			if r.final {
				c.State, a.State, f.State = finalCharge[i%len(finalCharge)], finalAgreement[i%len(finalAgreement)], finalRefund[i%len(finalRefund)]
			}
			c.NextCheckTime, a.NextCheckTime, f.NextCheckTime = time.Time{}, time.Time{}, time.Time{}
			if r.next != nil {
				next := dueNow.Add(*r.next).In(shanghai)
				c.NextCheckTime, a.NextCheckTime, f.NextCheckTime = next, next, next
			}
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
			if err := tx.CreateAgreement(t.Context(), a); err != nil {
				return err
			}
			if err := tx.CreateRefund(t.Context(), f); err != nil {
				return err
			}
			d.charges[r.key], d.agreements[r.key], d.refunds[r.key] = c, a, f
		}
		return nil
	})
	return d
}

// dueKeys are the keys of one due scan or claim, by kind.
type dueKeys struct {
	Charges, Agreements, Refunds []string
	Intents                      []int64
}

// keysOf returns the keys of d.
func keysOf(d service.Due) dueKeys {
	var k dueKeys
	for _, c := range d.Charges {
		k.Charges = append(k.Charges, c.OutTradeNo)
	}
	for _, a := range d.Agreements {
		k.Agreements = append(k.Agreements, a.OutContractCode)
	}
	k.Refunds = refundNos(d.Refunds)
	for _, in := range d.Intents {
		k.Intents = append(k.Intents, in.ID)
	}
	return k
}

// scan runs the three due scans at now with limit.
func scan(t *testing.T, s service.Store, now time.Time, limit int) service.Due {
	t.Helper()
	var d service.Due
	var err error
	if d.Charges, err = s.DueCharges(t.Context(), now, limit); err != nil {
		t.Fatalf("DueCharges: %v", err)
	}
	if d.Agreements, err = s.DueAgreements(t.Context(), now, limit); err != nil {
		t.Fatalf("DueAgreements: %v", err)
	}
	if d.Refunds, err = s.DueRefunds(t.Context(), now, limit); err != nil {
		t.Fatalf("DueRefunds: %v", err)
	}
	return d
}

// same returns keys for charges, agreements and refunds alike.
func same(keys ...string) dueKeys {
	return dueKeys{Charges: keys, Agreements: keys, Refunds: keys}
}

func testDueScans(t *testing.T, open Opener) {
	s := open(t)
	recs := seedDue(t, s, dueRows)
	for _, tt := range []struct {
		name  string
		now   time.Time
		limit int
		want  dueKeys
	}{
		{"now", dueNow, 100, same("B", "I", "D", "A")},
		{"now in another zone", dueNow.In(shanghai), 100, same("B", "I", "D", "A")},
		{"limit", dueNow, 2, same("B", "I")},
		{"limit 1", dueNow, 1, same("B")},
		{"1ns before now", dueNow.Add(-1), 100, same("B", "I", "D")},
		{"1ns after now", dueNow.Add(1), 100, same("B", "I", "D", "A", "C")},
		{"before every check", dueNow.Add(-2 * time.Hour), 100, dueKeys{}},
	} {
		d := scan(t, s, tt.now, tt.limit)
		if diff := cmp.Diff(tt.want, keysOf(d)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// The scans return whole records.
	d := scan(t, s, dueNow, 1)
	if len(d.Charges) != 1 || len(d.Agreements) != 1 || len(d.Refunds) != 1 {
		t.Fatalf("scan with limit 1: %v, want one of each", keysOf(d))
	}
	if diff := cmp.Diff(recs.charges["B"], d.Charges[0]); diff != "" {
		t.Errorf("due charge (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(recs.agreements["B"], d.Agreements[0]); diff != "" {
		t.Errorf("due agreement (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(recs.refunds["B"], d.Refunds[0]); diff != "" {
		t.Errorf("due refund (-want +got):\n%s", diff)
	}
	// A limit below 1 is refused.
	for _, n := range []int{0, -1} {
		if _, err := s.DueCharges(t.Context(), dueNow, n); err == nil {
			t.Errorf("DueCharges with limit %d: err = nil, want an error", n)
		}
		if _, err := s.DueAgreements(t.Context(), dueNow, n); err == nil {
			t.Errorf("DueAgreements with limit %d: err = nil, want an error", n)
		}
		if _, err := s.DueRefunds(t.Context(), dueNow, n); err == nil {
			t.Errorf("DueRefunds with limit %d: err = nil, want an error", n)
		}
	}
}

// dueTieRows are dueRows with E, due at the same time as B and recorded
// after it, and H, final without a re-check. In due order: B, E (the
// record order breaks the tie), I, D, A.
var dueTieRows = []dueRow{
	{"A", false, offset(0)},
	{"B", false, offset(-time.Hour)},
	{"C", false, offset(1)},
	{"D", false, offset(-time.Minute)},
	{"E", false, offset(-time.Hour)},
	{"F", false, nil},
	{"G", true, nil},
	{"H", true, nil},
	{"I", true, offset(-10 * time.Minute)},
}

// testDueScanBounds: ties in due time are in record order, and a now
// outside the times a store can hold finds everything or nothing.
func testDueScanBounds(t *testing.T, open Opener) {
	s := open(t)
	seedDue(t, s, dueTieRows)
	for _, tt := range []struct {
		name  string
		now   time.Time
		limit int
		want  dueKeys
	}{
		{"now", dueNow, 100, same("B", "E", "I", "D", "A")},
		{"limit splits a tie", dueNow, 1, same("B")},
		{"limit after a tie", dueNow, 3, same("B", "E", "I")},
		{"at the tie", dueNow.Add(-time.Hour), 100, same("B", "E")},
		{"1ns before the tie", dueNow.Add(-time.Hour - 1), 100, dueKeys{}},
		{"after 2262", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 100, same("B", "E", "I", "D", "A", "C")},
		{"before 1677", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 100, dueKeys{}},
		{"zero time", time.Time{}, 100, dueKeys{}},
	} {
		if diff := cmp.Diff(tt.want, keysOf(scan(t, s, tt.now, tt.limit))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// testDueScansFollowUpdates: a record that ends with no re-check leaves
// the scans, one that gets a check time enters them, a rescheduled one
// moves.
func testDueScansFollowUpdates(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	recs := seedDue(t, s, dueTieRows)
	inTx(t, s, func(tx service.Tx) error {
		c, a, r := recs.charges["B"], recs.agreements["B"], recs.refunds["B"]
		c.State, a.State, r.State = service.ChargeSucceeded, service.AgreementTerminated, service.RefundSucceeded
		c.NextCheckTime, a.NextCheckTime, r.NextCheckTime = time.Time{}, time.Time{}, time.Time{}
		if err := errors.Join(tx.UpdateCharge(ctx, c), tx.UpdateAgreement(ctx, a), tx.UpdateRefund(ctx, r)); err != nil {
			return err
		}
		c, a, r = recs.charges["F"], recs.agreements["F"], recs.refunds["F"]
		c.NextCheckTime, a.NextCheckTime, r.NextCheckTime = dueNow.Add(-30*time.Minute), dueNow.Add(-30*time.Minute), dueNow.Add(-30*time.Minute)
		if err := errors.Join(tx.UpdateCharge(ctx, c), tx.UpdateAgreement(ctx, a), tx.UpdateRefund(ctx, r)); err != nil {
			return err
		}
		c, a, r = recs.charges["E"], recs.agreements["E"], recs.refunds["E"]
		c.NextCheckTime, a.NextCheckTime, r.NextCheckTime = dueNow.Add(time.Hour), dueNow.Add(time.Hour), dueNow.Add(time.Hour)
		c.CheckAttempts, a.CheckAttempts, r.Checks = 1, 1, 1
		return errors.Join(tx.UpdateCharge(ctx, c), tx.UpdateAgreement(ctx, a), tx.UpdateRefund(ctx, r))
	})
	if diff := cmp.Diff(same("F", "I", "D", "A"), keysOf(scan(t, s, dueNow, 100))); diff != "" {
		t.Errorf("after updates (-want +got):\n%s", diff)
	}
}

// claim runs ClaimDue and fails the test on error.
func claim(t *testing.T, s service.Store, now time.Time, limit int, owner string) dueKeys {
	t.Helper()
	d, err := s.ClaimDue(t.Context(), now, limit, service.Lease{Owner: owner, TTL: time.Minute})
	if err != nil {
		t.Fatalf("ClaimDue(%v, %d, %s): %v", now, limit, owner, err)
	}
	return keysOf(d)
}

// seedClaims records dueRows and two open intents, and returns the
// intents' ids, oldest first.
func seedClaims(t *testing.T, s service.Store) []int64 {
	t.Helper()
	seedDue(t, s, dueRows)
	return []int64{
		createIntent(t, s, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: dueNow.Add(-time.Hour)}),
		createIntent(t, s, service.Intent{Kind: service.IntentTerminate, Key: "C1", CreateTime: dueNow.Add(-time.Minute)}),
	}
}

func testClaimDue(t *testing.T, open Opener) {
	s := open(t)
	intents := seedClaims(t, s)
	all := same("B", "I", "D", "A")
	all.Intents = intents
	step := func(name string, got, want dueKeys) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	step("A claims", claim(t, s, dueNow, 100, "A"), all)
	step("B at the same now", claim(t, s, dueNow, 100, "B"), dueKeys{})
	// C, due 1ns after dueNow, is due too from then on.
	all.Charges, all.Agreements, all.Refunds = append(all.Charges, "C"), append(all.Agreements, "C"), append(all.Refunds, "C")
	step("A claims its own again", claim(t, s, dueNow.Add(30*time.Second), 100, "A"), all)
	// A's renewed claims run to dueNow+90s.
	step("B before A's renewed claims expire", claim(t, s, dueNow.Add(80*time.Second), 100, "B"), dueKeys{})

	// A record due after A's claim is B's.
	later := dueRow{"J", false, offset(time.Second)}
	seedDue(t, s, []dueRow{later})
	j := same("J")
	step("B claims what A does not hold", claim(t, s, dueNow.Add(80*time.Second), 100, "B"), j)
	step("A renews its own, not B's", claim(t, s, dueNow.Add(81*time.Second), 100, "A"), all)

	// A's claims expired (at dueNow+141s): B takes them, and its own again.
	all.Charges, all.Agreements, all.Refunds = append(all.Charges, "J"), append(all.Agreements, "J"), append(all.Refunds, "J")
	step("B after A's claims expired", claim(t, s, dueNow.Add(142*time.Second), 100, "B"), all)
}

func testClaimDueLimit(t *testing.T, open Opener) {
	s := open(t)
	intents := seedClaims(t, s)
	first := same("B", "I")
	first.Intents = intents
	if diff := cmp.Diff(first, claim(t, s, dueNow, 2, "A")); diff != "" {
		t.Errorf("A claims 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(same("D", "A"), claim(t, s, dueNow, 2, "B")); diff != "" {
		t.Errorf("B claims 2 of what A left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(first, claim(t, s, dueNow, 2, "A")); diff != "" {
		t.Errorf("A claims 2 again (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(dueKeys{}, claim(t, s, dueNow, 2, "C")); diff != "" {
		t.Errorf("C after A and B (-want +got):\n%s", diff)
	}
	last := same("B")
	last.Intents = intents
	if diff := cmp.Diff(last, claim(t, s, dueNow.Add(2*time.Minute), 1, "C")); diff != "" {
		t.Errorf("C claims 1 once the others expired (-want +got):\n%s", diff)
	}
}

func testReleaseClaims(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	intents := seedClaims(t, s)
	all := same("B", "I", "D", "A")
	all.Intents = intents
	lease := service.Lease{Owner: "A", TTL: time.Hour}
	if ok, err := s.ClaimLease(ctx, "we_1", dueNow, lease); err != nil || !ok {
		t.Fatalf("ClaimLease(we_1, A) = %v, %v; want true, nil", ok, err)
	}
	if diff := cmp.Diff(all, claim(t, s, dueNow, 100, "A")); diff != "" {
		t.Errorf("A claims (-want +got):\n%s", diff)
	}
	if err := s.ReleaseClaims(ctx, "B"); err != nil {
		t.Fatalf("ReleaseClaims(B): %v", err)
	}
	if diff := cmp.Diff(dueKeys{}, claim(t, s, dueNow, 100, "B")); diff != "" {
		t.Errorf("B after ReleaseClaims(B) (-want +got):\n%s", diff)
	}
	if err := s.ReleaseClaims(ctx, "A"); err != nil {
		t.Fatalf("ReleaseClaims(A): %v", err)
	}
	if diff := cmp.Diff(all, claim(t, s, dueNow, 100, "B")); diff != "" {
		t.Errorf("B after ReleaseClaims(A) (-want +got):\n%s", diff)
	}
	// ReleaseClaims ends only what ClaimDue took: A still holds we_1.
	if ok, err := s.ClaimLease(ctx, "we_1", dueNow, service.Lease{Owner: "B", TTL: time.Hour}); err != nil || ok {
		t.Errorf("ClaimLease(we_1, B) after ReleaseClaims(A) = %v, %v; want false, nil", ok, err)
	}
}

func testLeases(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	now := dueNow
	a, b := service.Lease{Owner: "A", TTL: time.Minute}, service.Lease{Owner: "B", TTL: time.Minute}
	for _, st := range []struct {
		name string
		op   func() (bool, error)
		want bool
	}{
		{"A takes we_1", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now, a) }, true},
		{"B is refused we_1", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now, b) }, false},
		{"B takes we_2", func() (bool, error) { return s.ClaimLease(ctx, "we_2", now, b) }, true},
		{"B is refused we_1 before it expires", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(59*time.Second), b) }, false},
		{"A renews we_1", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(30*time.Second), a) }, true},
		{"B is refused we_1 renewed", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(80*time.Second), b) }, false},
		{"B takes we_1 expired", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(91*time.Second), b) }, true},
		{"A is refused we_1 now B's", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(91*time.Second), a) }, false},
		{"A releases we_1, which it does not hold", func() (bool, error) { return true, s.ReleaseLease(ctx, "we_1", "A") }, true},
		{"A is still refused we_1", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(92*time.Second), a) }, false},
		{"B releases we_1", func() (bool, error) { return true, s.ReleaseLease(ctx, "we_1", "B") }, true},
		{"A takes we_1 released", func() (bool, error) { return s.ClaimLease(ctx, "we_1", now.Add(92*time.Second), a) }, true},
		{"A releases an unknown lease", func() (bool, error) { return true, s.ReleaseLease(ctx, "we_9", "A") }, true},
		{"B still holds we_2", func() (bool, error) { return s.ClaimLease(ctx, "we_2", now.Add(30*time.Second), a) }, false},
	} {
		got, err := st.op()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: %v, want %v", st.name, got, st.want)
		}
	}
}

// lock runs LockKey with a deadline of 5 s and fails the test unless it
// locks.
func lock(t *testing.T, s service.Store, key string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	unlock, err := s.LockKey(ctx, key)
	if err != nil {
		t.Fatalf("LockKey(%s): %v, want the lock", key, err)
	}
	if unlock == nil {
		t.Fatalf("LockKey(%s) returned a nil unlock function", key)
	}
	return unlock
}

func testLockKey(t *testing.T, open Opener) {
	s := open(t)
	// Locked and unlocked, a key locks again; other keys are independent.
	unlock := lock(t, s, "charge/T1")
	other := lock(t, s, "contract/C1")
	unlock()
	lock(t, s, "charge/T1")()
	other()

	// An ended ctx: an error, and the key is not locked; or the lock, as a
	// store one process opens may give at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if unlock, err := s.LockKey(ctx, "charge/T2"); err != nil {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("LockKey with a cancelled ctx: %v, want context.Canceled", err)
		}
	} else {
		unlock()
	}
	lock(t, s, "charge/T2")()

	// While another holder has the key, a ctx that ends returns an error
	// or the lock, and leaks nothing: once the holder unlocks, the key
	// locks again.
	held := lock(t, s, "presign/P1")
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if unlock, err := s.LockKey(ctx, "presign/P1"); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("LockKey of a held key until the deadline: %v, want context.DeadlineExceeded", err)
		}
	} else {
		unlock()
	}
	held()
	lock(t, s, "presign/P1")()
}
