package postgres

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// dueKeys are the keys of d: intents by kind/key, charges by out_trade_no,
// agreements by out_contract_code, refunds by out_refund_no, each in the
// order ClaimDue returned them.
type dueKeys struct {
	Intents, Charges, Agreements, Refunds []string
}

func keysOf(d service.Due) dueKeys {
	var k dueKeys
	for _, in := range d.Intents {
		k.Intents = append(k.Intents, string(in.Kind)+"/"+in.Key)
	}
	for _, c := range d.Charges {
		k.Charges = append(k.Charges, c.OutTradeNo)
	}
	for _, a := range d.Agreements {
		k.Agreements = append(k.Agreements, a.OutContractCode)
	}
	for _, r := range d.Refunds {
		k.Refunds = append(k.Refunds, r.OutRefundNo)
	}
	return k
}

// claim runs ClaimDue and fails the test on error.
func claim(t *testing.T, db *DB, now time.Time, limit int, owner string, ttl time.Duration) dueKeys {
	t.Helper()
	d, err := db.ClaimDue(t.Context(), now, limit, service.Lease{Owner: owner, TTL: ttl})
	if err != nil {
		t.Fatalf("ClaimDue(%v, %d, %s): %v", now, limit, owner, err)
	}
	return keysOf(d)
}

// seedClaims creates seedDue's charges and agreements, a refund for each
// of dueRows (the same next check times) and two open intents.
func seedClaims(t *testing.T, db *DB) {
	t.Helper()
	seedDue(t, db)
	var rs []service.Refund
	for i, r := range dueRows {
		created := dueNow.Add(-time.Duration(len(dueRows)-i) * 24 * time.Hour)
		rf := fullRefund(r.key, "", created)
		rf.NextCheckTime = time.Time{}
		if r.next != nil {
			rf.NextCheckTime = dueNow.Add(*r.next)
		}
		rs = append(rs, rf)
	}
	createRefunds(t, db, rs...)
	createIntent(t, db, service.Intent{Kind: service.IntentClose, Key: "T2", CreateTime: dueNow})
	createIntent(t, db, service.Intent{Kind: service.IntentTerminate, Key: "C1", CreateTime: dueNow.Add(-time.Hour)})
}

var (
	dueAtNow   = []string{"B", "E", "I", "D", "A"}      // dueScanTests' "now"
	dueLater   = []string{"B", "E", "I", "D", "A", "C"} // "1ns after now"
	allIntents = []string{"CLOSE/T2", "TERMINATE/C1"}   // in id order
)

func TestClaimDue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]
	seedClaims(t, a)
	const ttl = time.Minute

	all := dueKeys{allIntents, dueAtNow, dueAtNow, dueAtNow}
	if diff := cmp.Diff(all, claim(t, a, dueNow, 100, "a", ttl)); diff != "" {
		t.Fatalf("A's claim (-want +got):\n%s", diff)
	}
	// B gets none of A's records, before A's lease ends.
	if got := claim(t, b, dueNow.Add(ttl-1), 100, "b", ttl); !cmp.Equal(got, dueKeys{Charges: []string{"C"}, Agreements: []string{"C"}, Refunds: []string{"C"}}) {
		t.Errorf("B's claim while A holds the rest = %+v, want C of each only", got)
	}
	if err := b.ReleaseClaims(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// A claims its own again (and C, which B released).
	if diff := cmp.Diff(dueKeys{allIntents, dueLater, dueLater, dueLater}, claim(t, a, dueNow.Add(1), 100, "a", ttl)); diff != "" {
		t.Errorf("A's claim again (-want +got):\n%s", diff)
	}
	// That claim extended A's lease to dueNow+1+ttl: B still gets nothing at dueNow+ttl.
	if got := claim(t, b, dueNow.Add(ttl), 100, "b", ttl); !cmp.Equal(got, dueKeys{}) {
		t.Errorf("B's claim before A's renewed lease ends = %+v, want nothing", got)
	}
	// Once A's lease ended, B takes everything over.
	later := dueNow.Add(1 + ttl)
	takeover := dueKeys{allIntents, dueLater, dueLater, dueLater}
	if diff := cmp.Diff(takeover, claim(t, b, later, 100, "b", ttl)); diff != "" {
		t.Errorf("B's claim after A's lease ended (-want +got):\n%s", diff)
	}
	if got := claim(t, a, later, 100, "a", ttl); !cmp.Equal(got, dueKeys{}) {
		t.Errorf("A's claim after B took over = %+v, want nothing", got)
	}
	// A releasing does not touch B's leases; B releasing frees them all.
	if err := a.ReleaseClaims(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, a, later, 100, "a", ttl); !cmp.Equal(got, dueKeys{}) {
		t.Errorf("A's claim after A released = %+v, want nothing", got)
	}
	if err := b.ReleaseClaims(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(takeover, claim(t, a, later, 100, "a", ttl)); diff != "" {
		t.Errorf("A's claim after B released (-want +got):\n%s", diff)
	}
	if err := a.ReleaseClaims(ctx, "a"); err != nil {
		t.Fatal(err)
	}

	// limit bounds each kind, in due order; intents are not limited.
	if diff := cmp.Diff(dueKeys{allIntents, dueAtNow[:2], dueAtNow[:2], dueAtNow[:2]}, claim(t, a, dueNow, 2, "a", ttl)); diff != "" {
		t.Errorf("limit 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(dueKeys{nil, dueAtNow[2:4], dueAtNow[2:4], dueAtNow[2:4]}, claim(t, b, dueNow, 2, "b", ttl)); diff != "" {
		t.Errorf("B's limit 2 after A's (-want +got):\n%s", diff)
	}
	if _, err := a.ClaimDue(ctx, dueNow, 0, service.Lease{Owner: "a", TTL: ttl}); err == nil {
		t.Error("ClaimDue with limit 0: no error")
	}
	// Nothing is due before every storable time, and the intents are
	// claimed all the same.
	if err := a.ReleaseClaims(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dueKeys{Intents: allIntents}, claim(t, a, time.Time{}, 10, "a", ttl)); diff != "" {
		t.Errorf("zero now (-want +got):\n%s", diff)
	}
}

// TestClaimDueRows pins that a claim returns whole records, as the due
// scans do, that the writes of the domain keep a record's lease, and that
// ReleaseClaims changes nothing else.
func TestClaimDueRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]
	seedClaims(t, a)

	d, err := a.ClaimDue(ctx, dueNow, 100, service.Lease{Owner: "a", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := a.DueCharges(ctx, dueNow, 100)
	as, _ := a.DueAgreements(ctx, dueNow, 100)
	rs, _ := a.DueRefunds(ctx, dueNow, 100)
	ins := openIntents(t, a)
	if diff := cmp.Diff(service.Due{Intents: ins, Charges: cs, Agreements: as, Refunds: rs}, d); diff != "" {
		t.Errorf("claimed rows differ from the due scans' (-scans +claim):\n%s", diff)
	}

	// Updates of claimed records keep the lease: B still gets none.
	inTx(t, a, func(tx Tx) error {
		c := cs[0]
		c.CheckAttempts++
		if err := tx.UpdateCharge(ctx, c); err != nil {
			return err
		}
		ag := as[0]
		ag.CheckAttempts++
		if err := tx.UpdateAgreement(ctx, ag); err != nil {
			return err
		}
		r := rs[0]
		r.Checks++
		return tx.UpdateRefund(ctx, r)
	})
	if got := claim(t, b, dueNow, 100, "b", time.Hour); !cmp.Equal(got, dueKeys{}) {
		t.Errorf("B's claim after A updated its records = %+v, want nothing", got)
	}
	// Resolving a claimed intent removes it.
	inTx(t, a, func(tx Tx) error { return tx.DeleteIntent(ctx, ins[0].ID) })

	before, _ := a.DueCharges(ctx, dueNow, 100)
	if err := a.ReleaseClaims(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	after, _ := a.DueCharges(ctx, dueNow, 100)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("ReleaseClaims changed the charges (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(dueKeys{allIntents[1:], dueAtNow, dueAtNow, dueAtNow}, claim(t, b, dueNow, 100, "b", time.Hour)); diff != "" {
		t.Errorf("B's claim after A released (-want +got):\n%s", diff)
	}
}

// TestClaimDueConcurrent runs claims from many goroutines over two
// replicas, each its own owner, until nothing is left: the sets claimed
// are disjoint, each within limit, and together everything due.
func TestClaimDueConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	const n, limit = 300, 7
	now := dueNow
	var cs []service.Charge
	var rs []service.Refund
	for i := range n {
		c := fullCharge(fmt.Sprintf("T%03d", i), "", now.Add(-time.Hour))
		c.NextCheckTime = now.Add(-time.Duration(i%17) * time.Second) // ties, in id order
		cs = append(cs, c)
		r := fullRefund(fmt.Sprintf("R%03d", i), "", now.Add(-time.Hour))
		r.NextCheckTime = now.Add(-time.Duration(i%5) * time.Second)
		rs = append(rs, r)
	}
	// Not due: never claimed.
	late := fullCharge("late", "", now)
	late.NextCheckTime = now.Add(time.Second)
	createCharges(t, dbs[0], append(cs, late)...)
	createRefunds(t, dbs[0], rs...)
	for i := range 40 {
		createIntent(t, dbs[0], service.Intent{Kind: service.IntentClose, Key: fmt.Sprintf("T%03d", i), CreateTime: now})
	}

	var mu sync.Mutex
	owners := map[string]string{} // claimed record to owner
	var problems []string
	var wg sync.WaitGroup
	for g := range 8 {
		db := dbs[g%2]
		wg.Go(func() {
			// Each claim is a new owner, so that a record claimed twice is
			// a claim of another owner's record, never a re-claim.
			for i := 0; ; i++ {
				owner := fmt.Sprintf("replica%d-goroutine%d-claim%d", g%2, g, i)
				d, err := db.ClaimDue(ctx, now, limit, service.Lease{Owner: owner, TTL: time.Hour})
				mu.Lock()
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", owner, err))
					mu.Unlock()
					return
				}
				if len(d.Charges) > limit || len(d.Refunds) > limit {
					problems = append(problems, fmt.Sprintf("%s: %d charges, %d refunds over limit %d",
						owner, len(d.Charges), len(d.Refunds), limit))
				}
				k := keysOf(d)
				var claimed []string
				for _, s := range k.Intents {
					claimed = append(claimed, "intent "+s)
				}
				for _, s := range k.Charges {
					claimed = append(claimed, "charge "+s)
				}
				for _, s := range k.Refunds {
					claimed = append(claimed, "refund "+s)
				}
				for _, s := range claimed {
					if prev, ok := owners[s]; ok {
						problems = append(problems, fmt.Sprintf("%s claimed by %s and %s", s, prev, owner))
					}
					owners[s] = owner
				}
				mu.Unlock()
				if len(d.Charges) == 0 && len(d.Refunds) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	var want, got []string
	for _, c := range cs {
		want = append(want, "charge "+c.OutTradeNo)
	}
	for _, r := range rs {
		want = append(want, "refund "+r.OutRefundNo)
	}
	for i := range 40 {
		want = append(want, fmt.Sprintf("intent CLOSE/T%03d", i))
	}
	for s := range owners {
		got = append(got, s)
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claimed records (-due +claimed):\n%s", diff)
	}
	// Everything due is leased: a new owner finds nothing.
	if got := claim(t, dbs[1], now, 1000, "newcomer", time.Hour); !cmp.Equal(got, dueKeys{}) {
		t.Errorf("a new owner's claim = %+v, want nothing", got)
	}
}

func TestClaimLease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]
	now := dueNow
	la, lb := service.Lease{Owner: "a", TTL: time.Minute}, service.Lease{Owner: "b", TTL: time.Minute}
	take := func(db *DB, name string, at time.Time, l service.Lease, want bool) {
		t.Helper()
		got, err := db.ClaimLease(ctx, name, at, l)
		if err != nil {
			t.Fatalf("ClaimLease(%s, %v, %s): %v", name, at, l.Owner, err)
		}
		if got != want {
			t.Errorf("ClaimLease(%s, %v, %s) = %v, want %v", name, at.Sub(now), l.Owner, got, want)
		}
	}
	release := func(db *DB, name, owner string) {
		t.Helper()
		if err := db.ReleaseLease(ctx, name, owner); err != nil {
			t.Fatalf("ReleaseLease(%s, %s): %v", name, owner, err)
		}
	}

	take(a, "endpoint/1", now, la, true)
	take(b, "endpoint/1", now, lb, false)
	take(b, "endpoint/2", now, lb, true) // another name is another lease
	take(b, "endpoint/1", now.Add(time.Minute-1), lb, false)
	// A renews: held until now+30s+1m.
	take(a, "endpoint/1", now.Add(30*time.Second), la, true)
	take(b, "endpoint/1", now.Add(time.Minute), lb, false)
	take(b, "endpoint/1", now.Add(90*time.Second-1), lb, false)
	// Expired: B takes it over, and A's renewal fails.
	take(b, "endpoint/1", now.Add(90*time.Second), lb, true)
	take(a, "endpoint/1", now.Add(90*time.Second), la, false)
	// A release by who does not hold it does nothing.
	release(a, "endpoint/1", "a")
	release(a, "endpoint/9", "a")
	take(a, "endpoint/1", now.Add(90*time.Second), la, false)
	// B releases: A takes it at once.
	release(b, "endpoint/1", "b")
	take(a, "endpoint/1", now.Add(90*time.Second), la, true)
	take(b, "endpoint/2", now.Add(90*time.Second), lb, true) // B's other lease, expired, renewed by B

	// Concurrent first claims of one name: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 16 {
		db := dbs[i%2]
		wg.Go(func() {
			ok, err := db.ClaimLease(ctx, "endpoint/race", now, service.Lease{Owner: fmt.Sprint(i), TTL: time.Minute})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent first claims won, want 1", wins)
	}
}
