package service

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// AuditEntry is one line of the audit trail: who did what to which
// resource, and how it ended.
type AuditEntry struct {
	ID       int64
	Time     time.Time
	KeyID    string // "" without a key
	KeyName  string
	Peer     string
	Method   string // the use case, e.g. CreateCharge
	Resource string // e.g. charges/ORDER-1
	Outcome  string // OutcomeOK, or a refusal's or failure's reason
}

// AuditOK is the outcome of a call that did what it was asked.
const AuditOK = "OK"

// AuditFilter selects audit entries. Zero fields do not filter.
type AuditFilter struct {
	Resource  string
	KeyID     string
	PageSize  int
	PageToken string
}

// auditEntry is the entry of ctx's caller calling method on resource.
func (s *Service) auditEntry(ctx context.Context, method, resource, outcome string) AuditEntry {
	c := CallerFrom(ctx)
	return AuditEntry{Time: s.clock.Now(), KeyID: c.KeyID, KeyName: c.Name, Peer: c.Peer,
		Method: method, Resource: resource, Outcome: outcome}
}

// audit records, inside tx, that ctx's caller did method to resource.
func (s *Service) audit(ctx context.Context, tx Tx, method, resource string) error {
	if err := tx.InsertAuditEntry(ctx, s.auditEntry(ctx, method, resource, AuditOK)); err != nil {
		return fmt.Errorf("audit %s %s: %w", method, resource, err)
	}
	return nil
}

// ListAuditEntries pages through the audit trail, newest first. The trail
// spans every sub-merchant, so a caller limited to some is refused.
func (s *Service) ListAuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error) {
	if c := CallerFrom(ctx); len(c.SubMchIDs) > 0 {
		return nil, "", wrap(ErrPermissionDenied, "the audit trail spans every sub-merchant: it needs a key without a sub-merchant limit", nil)
	}
	var v violations
	v.text("resource", f.Resource, 128, false)
	v.token("key_id", f.KeyID, 64, false)
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	es, next, err := s.store.ListAuditEntries(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	return es, next, nil
}

// RefusalAuditRate bounds the audit entries of refused calls, a second: a
// flood of bad tokens must not become a flood of writes.
const RefusalAuditRate = 20

// RecordRefusal records in the audit trail a call refused before it
// changed anything (unauthenticated, forbidden, invalid, rate-limited),
// without waiting for the commit. At most RefusalAuditRate a second are
// recorded; the next recorded one says how many were not.
func (s *Service) RecordRefusal(ctx context.Context, method, resource, outcome string) {
	skipped, ok := s.refusals.take(s.clock.Now())
	if !ok {
		return
	}
	if skipped > 0 {
		outcome = fmt.Sprintf("%s (and %d refusals not recorded)", outcome, skipped)
	}
	e := s.auditEntry(ctx, method, resource, outcome)
	err := s.store.RecordAuditEntry(context.WithoutCancel(ctx), e, func(err error) {
		s.log.Error("audit entry of a refused call not recorded", "method", method, "error", err.Error())
	})
	if err != nil {
		s.log.Error("audit entry of a refused call not recorded", "method", method, "error", err.Error())
	}
}

// refusalSampler lets RefusalAuditRate refusals a second through and
// counts the others.
type refusalSampler struct {
	mu      sync.Mutex
	second  int64
	n       int
	skipped int
}

// take reports whether one more refusal may be recorded at now, and how
// many were skipped before it.
func (r *refusalSampler) take(now time.Time) (skipped int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.second {
		r.second, r.n = sec, 0
	}
	if r.n >= RefusalAuditRate {
		r.skipped++
		return 0, false
	}
	r.n++
	skipped, r.skipped = r.skipped, 0
	return skipped, true
}
