package db

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// One process opens a SQLite store (the data directory's lock): there is
// no other replica to serialize against or to claim work from. LockKey is
// therefore the domain's own in-process lock, and the leases live in this
// process's memory, with the semantics internal/postgres keeps in its
// tables, so the store contract (and its conformance suite) is the same.

// LockKey returns at once: the domain's in-process lock of key is all a
// store one process opens needs.
func (db *DB) LockKey(context.Context, string) (func(), error) {
	return func() {}, nil
}

// leases are the leases of this process: name to holder.
type leases struct {
	mu sync.Mutex
	m  map[string]lease
}

type lease struct {
	owner  string
	until  time.Time
	claims bool // taken by ClaimDue: ReleaseClaims ends it
}

// take leases name to l.Owner until now + l.TTL, unless another owner
// holds it unexpired.
func (ls *leases) take(name string, now time.Time, l service.Lease, claims bool) bool {
	if ls.m == nil {
		ls.m = map[string]lease{}
	}
	if cur, ok := ls.m[name]; ok && cur.owner != l.Owner && cur.until.After(now) {
		return false
	}
	ls.m[name] = lease{owner: l.Owner, until: now.Add(l.TTL), claims: claims}
	return true
}

// heldByOthers counts the leases with prefix that another owner holds at
// now: a due scan reads that many more rows, so that limit are left.
func (ls *leases) heldByOthers(prefix, owner string, now time.Time) int {
	n := 0
	for name, cur := range ls.m {
		if cur.owner != owner && cur.until.After(now) && strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}

// ClaimDue claims the open intents and up to limit due charges, agreements
// and refunds each that no other owner holds, leasing them to l.Owner
// until now + l.TTL.
func (db *DB) ClaimDue(ctx context.Context, now time.Time, limit int, l service.Lease) (service.Due, error) {
	db.leases.mu.Lock()
	defer db.leases.mu.Unlock()
	var d service.Due
	intents, err := db.OpenIntents(ctx)
	if err != nil {
		return service.Due{}, err
	}
	for _, in := range intents {
		if db.leases.take("intent/"+strconv.FormatInt(in.ID, 10), now, l, true) {
			d.Intents = append(d.Intents, in)
		}
	}
	charges, err := db.DueCharges(ctx, now, limit+db.leases.heldByOthers("charge/", l.Owner, now))
	if err != nil {
		return service.Due{}, err
	}
	for _, c := range charges {
		if len(d.Charges) < limit && db.leases.take("charge/"+c.OutTradeNo, now, l, true) {
			d.Charges = append(d.Charges, c)
		}
	}
	agreements, err := db.DueAgreements(ctx, now, limit+db.leases.heldByOthers("agreement/", l.Owner, now))
	if err != nil {
		return service.Due{}, err
	}
	for _, a := range agreements {
		if len(d.Agreements) < limit && db.leases.take("agreement/"+a.OutContractCode, now, l, true) {
			d.Agreements = append(d.Agreements, a)
		}
	}
	refunds, err := db.DueRefunds(ctx, now, limit+db.leases.heldByOthers("refund/", l.Owner, now))
	if err != nil {
		return service.Due{}, err
	}
	for _, r := range refunds {
		if len(d.Refunds) < limit && db.leases.take("refund/"+r.OutRefundNo, now, l, true) {
			d.Refunds = append(d.Refunds, r)
		}
	}
	return d, nil
}

// ReleaseClaims ends every lease of owner that ClaimDue took.
func (db *DB) ReleaseClaims(_ context.Context, owner string) error {
	db.leases.mu.Lock()
	defer db.leases.mu.Unlock()
	for name, cur := range db.leases.m {
		if cur.claims && cur.owner == owner {
			delete(db.leases.m, name)
		}
	}
	return nil
}

// ClaimLease takes or renews the lease called name for l.Owner.
func (db *DB) ClaimLease(_ context.Context, name string, now time.Time, l service.Lease) (bool, error) {
	db.leases.mu.Lock()
	defer db.leases.mu.Unlock()
	return db.leases.take("named/"+name, now, l, false), nil
}

// ReleaseLease ends owner's lease called name.
func (db *DB) ReleaseLease(_ context.Context, name, owner string) error {
	db.leases.mu.Lock()
	defer db.leases.mu.Unlock()
	if cur, ok := db.leases.m["named/"+name]; ok && cur.owner == owner {
		delete(db.leases.m, "named/"+name)
	}
	return nil
}
