package service

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A flood of refused calls becomes at most RefusalAuditRate entries a
// second, the next recorded one counting those skipped.
func TestRefusalsAreAuditedAtABoundedRate(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := WithCaller(context.Background(), Caller{KeyID: "k1", Name: "billing", Peer: "10.0.0.7:4000"})
	for range 1000 {
		f.svc.RecordRefusal(ctx, "CreateCharge", "charges/T1", "UNAUTHENTICATED")
	}
	es, _, err := f.svc.ListAuditEntries(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != RefusalAuditRate {
		t.Fatalf("%d entries for 1000 refusals in one second, want %d", len(es), RefusalAuditRate)
	}
	if e := es[0]; e.KeyID != "k1" || e.KeyName != "billing" || e.Peer != "10.0.0.7:4000" || e.Method != "CreateCharge" || e.Outcome != "UNAUTHENTICATED" {
		t.Fatalf("entry %+v", e)
	}
	f.clock.advance(time.Second)
	f.svc.RecordRefusal(ctx, "CreateCharge", "charges/T1", "UNAUTHENTICATED")
	es, _, _ = f.svc.ListAuditEntries(ctx, AuditFilter{})
	if !strings.Contains(es[0].Outcome, "and 980 refusals not recorded") {
		t.Fatalf("the next second's entry: %q", es[0].Outcome)
	}
}

func TestAuditNeedsAnUnlimitedKey(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := WithCaller(context.Background(), Caller{KeyID: "k1", SubMchIDs: []string{"1900000109"}})
	if _, _, err := f.svc.ListAuditEntries(ctx, AuditFilter{}); KindOf(err) != KindPermissionDenied {
		t.Fatalf("a limited key reads the audit: %v", err)
	}
}
