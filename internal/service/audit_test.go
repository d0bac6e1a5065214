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

// Every mutating use case writes its audit entry, with its caller, in the
// transaction of its effect.
func TestMutatingCallsAreAudited(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := WithCaller(context.Background(), Caller{KeyID: "k1", Name: "billing", Peer: "10.0.0.7:4000"})
	out, err := f.svc.CreatePresignSession(ctx, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	f.sign(t, "C1", "W1")
	f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeUserPaying, Amount: req.Amount}, nil
	}
	in := ChargeInput{OutTradeNo: "T1", ContractID: "W1", Amount: hkd(100), Description: "d", MerchantCategoryCode: "5812"}
	if _, err := f.svc.CreateCharge(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CloseCharge(ctx, "T1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "bye"); err != nil {
		t.Fatal(err)
	}
	es, _, err := f.svc.ListAuditEntries(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.KeyID != "k1" || e.KeyName != "billing" || e.Peer != "10.0.0.7:4000" || e.Outcome != AuditOK {
			t.Errorf("entry %+v", e)
		}
		got = append(got, e.Method+" "+e.Resource)
	}
	want := []string{"TerminateAgreement agreements/C1", "CloseCharge charges/T1", "CreateCharge charges/T1",
		"CreatePresignSession agreements/" + out.Agreement.OutContractCode}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit %v, want %v", got, want)
	}
}
