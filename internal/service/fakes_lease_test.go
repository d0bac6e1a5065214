package service

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// memLeases are the leases of a memStore: name to holder.
type memLeases struct {
	mu sync.Mutex
	m  map[string]memLease
}

type memLease struct {
	owner  string
	until  time.Time
	claims bool // taken by ClaimDue (ReleaseClaims ends it)
}

// take leases name to l.Owner unless another holds it unexpired.
func (ls *memLeases) take(name string, now time.Time, l Lease, claims bool) bool {
	if ls.m == nil {
		ls.m = map[string]memLease{}
	}
	if cur, ok := ls.m[name]; ok && cur.owner != l.Owner && cur.until.After(now) {
		return false
	}
	ls.m[name] = memLease{owner: l.Owner, until: now.Add(l.TTL), claims: claims}
	return true
}

func (m *memStore) LockKey(context.Context, string) (func(), error) {
	return func() {}, nil // one process: the Service's own lock is enough
}

func (m *memStore) ClaimDue(ctx context.Context, now time.Time, limit int, l Lease) (Due, error) {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	var d Due
	intents, _ := m.OpenIntents(ctx)
	for _, in := range intents {
		if m.leases.take("intent/"+strconv.FormatInt(in.ID, 10), now, l, true) {
			d.Intents = append(d.Intents, in)
		}
	}
	charges, _ := m.DueCharges(ctx, now, len(m.view().charges))
	for _, c := range charges {
		if len(d.Charges) < limit && m.leases.take("charge/"+c.OutTradeNo, now, l, true) {
			d.Charges = append(d.Charges, c)
		}
	}
	agreements, _ := m.DueAgreements(ctx, now, len(m.view().agreements))
	for _, a := range agreements {
		if len(d.Agreements) < limit && m.leases.take("agreement/"+a.OutContractCode, now, l, true) {
			d.Agreements = append(d.Agreements, a)
		}
	}
	refunds, _ := m.DueRefunds(ctx, now, len(m.view().refunds))
	for _, r := range refunds {
		if len(d.Refunds) < limit && m.leases.take("refund/"+r.OutRefundNo, now, l, true) {
			d.Refunds = append(d.Refunds, r)
		}
	}
	return d, nil
}

func (m *memStore) ReleaseClaims(_ context.Context, owner string) error {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	for name, cur := range m.leases.m {
		if cur.claims && cur.owner == owner {
			delete(m.leases.m, name)
		}
	}
	return nil
}

func (m *memStore) ClaimLease(_ context.Context, name string, now time.Time, l Lease) (bool, error) {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	return m.leases.take("named/"+name, now, l, false), nil
}

func (m *memStore) ReleaseLease(_ context.Context, name, owner string) error {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	if cur, ok := m.leases.m["named/"+name]; ok && cur.owner == owner {
		delete(m.leases.m, "named/"+name)
	}
	return nil
}
