package service

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// isoFixture has the same records for sub-merchants A and B (mchA, mchB):
// a SIGNED agreement codeX (contract wcX), a PENDING one pcodeX with a
// live session, a SUCCEEDED charge tradeX (transaction T-tradeX) and a
// PENDING charge pendX, and a PROCESSING refund rfndX of tradeX (refund id
// R-rfndX). Nothing exists for Z. remote counts the WeChat
// calls made after the seeding.
type isoFixture struct {
	*fixture
	remote atomic.Int64
}

func newIsoFixture(t *testing.T) *isoFixture {
	t.Helper()
	f := &isoFixture{fixture: newFixture()}
	f.svc.cfg.MerchantCategoryCode = "5812"
	ctx := context.Background() // Anonymous
	for _, x := range []string{"A", "B"} {
		f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "code" + x, Merchant: Merchant{SubMchID: "mch" + x}})
		f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "pcode" + x, Merchant: Merchant{SubMchID: "mch" + x}})
		f.sign(t, "code"+x, "wc"+x)
		f.charge(t, isoCharge("trade"+x, "wc"+x))
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
		}
		if c, err := f.svc.CreateCharge(ctx, isoCharge("pend"+x, "wc"+x)); err != nil || c.State != ChargePending {
			t.Fatalf("pending charge: %v %v", c.State, err)
		}
		f.wc.deduct = nil
		seedWebhook(t, f.store, "mch"+x, "hook"+x, "evt"+x)
		if r, err := f.svc.CreateRefund(ctx, isoRefund("rfnd"+x, "trade"+x)); err != nil || r.State != RefundProcessing {
			t.Fatalf("refund: %v %v", r.State, err)
		}
	}
	count := func() { f.remote.Add(1) }
	notFound := &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
	f.wc.queryFn = func(ContractQuery) (RemoteContract, error) { count(); return RemoteContract{}, notFound }
	f.wc.orderFn = func(TransactionQuery) (RemoteTransaction, error) { count(); return RemoteTransaction{}, notFound }
	f.wc.presigns, f.wc.deductions, f.wc.refunds, f.wc.refundQueries = nil, nil, nil, nil
	return f
}

func isoRefund(no, trade string) RefundInput {
	return RefundInput{OutRefundNo: no, OutTradeNo: trade, Amount: hkd(100), Reason: "returned"}
}

func isoCharge(no, contract string) ChargeInput {
	return ChargeInput{OutTradeNo: no, ContractID: contract, Amount: hkd(1000), Description: "Gym-Central-Monthly"}
}

// calls is every WeChat call made since the seeding.
func (f *isoFixture) calls() int64 {
	f.wc.mu.Lock()
	defer f.wc.mu.Unlock()
	return f.remote.Load() + int64(len(f.wc.presigns)+len(f.wc.deductions)+len(f.wc.reverses)+len(f.wc.terminates)+
		len(f.wc.refunds)+len(f.wc.refundQueries))
}

// How a caller of A is answered about B's records.
const (
	asMissing = iota // exactly as a record that does not exist (Z's)
	asDenied         // PERMISSION_DENIED
	asReused         // as the caller's own identifier reused with other parameters (ref)
	asEmpty          // an empty page
)

var caseIDs = regexp.MustCompile(`\b(code|pcode|wc|trade|pend|new|T-trade|mch|hook|evt|rfnd)[ABZ]\b`)

// sameAnswer fails unless got and want are the same error but for the
// records' identifiers: kind, reason, message, violations and text.
func sameAnswer(t *testing.T, got, want error) {
	t.Helper()
	if got == nil || want == nil {
		t.Fatalf("err = %v, want like %v", got, want)
	}
	norm := func(s string) string { return caseIDs.ReplaceAllString(s, "$1?") }
	g, w := AsError(got), AsError(want)
	if g.Kind != w.Kind || g.Reason != w.Reason || norm(g.Message) != norm(w.Message) ||
		!reflect.DeepEqual(g.Violations, w.Violations) || norm(got.Error()) != norm(want.Error()) {
		t.Fatalf("answer %v %s %q (%v), want as %v %s %q (%v)", g.Kind, g.Reason, g.Message, got, w.Kind, w.Reason, w.Message, want)
	}
}

// deliveries is the sub-merchants of ds.
func deliveries(ds []WebhookDelivery, err error) ([]string, error) {
	var r []string
	for _, d := range ds {
		r = append(r, d.SubMchID)
	}
	return r, err
}

// seedWebhook records endpoint id of sub-merchant sub with a FAILED
// delivery of event ev.
func seedWebhook(t *testing.T, s *memStore, sub, id, ev string) {
	t.Helper()
	err := s.InTx(context.Background(), func(tx Tx) error {
		ep := StoredWebhookEndpoint{WebhookEndpoint: WebhookEndpoint{ID: id, URL: "https://h.example", SubMchIDs: []string{sub},
			State: WebhookEndpointEnabled, CreateTime: t0, UpdateTime: t0}, Secret: "whsec_eA=="}
		if err := tx.CreateWebhookEndpoint(context.Background(), ep); err != nil {
			return err
		}
		d := NewWebhookDelivery(id, Event{ID: ev, Sequence: 1, Type: EventChargeSucceeded, SubMchID: sub}, t0)
		d.State, d.NextAttemptTime = WebhookDeliveryFailed, time.Time{}
		_, err := tx.CreateWebhookDelivery(context.Background(), d)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSubMerchantIsolation runs every use case that takes a caller as a
// caller of sub-merchant A: on B's records it sees and changes nothing, and
// WeChat is not called; on A's it works. Anonymous works on B's.
func TestSubMerchantIsolation(t *testing.T) {
	t.Parallel()
	type result = []string // the sub_mchids of the records answered
	one := func(id string, err error) (result, error) {
		if err != nil {
			return nil, err
		}
		return result{id}, nil
	}
	agreements := func(as []Agreement, _ string, err error) (result, error) {
		var r result
		for _, a := range as {
			r = append(r, a.SubMchID)
		}
		return r, err
	}
	charges := func(cs []Charge, _ string, err error) (result, error) {
		var r result
		for _, c := range cs {
			r = append(r, c.SubMchID)
		}
		return r, err
	}
	events := func(es []Event, _ uint64, err error) (result, error) {
		var r result
		for _, e := range es {
			r = append(r, e.SubMchID)
		}
		return r, err
	}
	refunds := func(rs []Refund, _ string, err error) (result, error) {
		var r result
		for _, rf := range rs {
			r = append(r, rf.SubMchID)
		}
		return r, err
	}
	tests := []struct {
		method, name string
		// run calls the method on X's records (x is A, B or Z).
		run    func(ctx context.Context, s *Service, x string) (result, error)
		answer int
		// ref is the reference answer of asReused, as a caller of A.
		ref func(ctx context.Context, s *Service) error
		// anonymousFails: run(B) is an error for Anonymous too (it names A's contract or sub-merchant).
		anonymousFails bool
	}{
		{"GetAgreement", "by contract_id", func(ctx context.Context, s *Service, x string) (result, error) {
			a, err := s.GetAgreement(ctx, AgreementKey{ContractID: "wc" + x}, false)
			return one(a.SubMchID, err)
		}, asMissing, nil, false},
		{"GetAgreement", "by out_contract_code, refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			a, err := s.GetAgreement(ctx, AgreementKey{OutContractCode: "code" + x, PlanID: 7}, true)
			return one(a.SubMchID, err)
		}, asMissing, nil, false},
		{"LookupAgreement", "refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			a, _, err := s.LookupAgreement(ctx, AgreementKey{ContractID: "wc" + x}, true)
			return one(a.SubMchID, err)
		}, asMissing, nil, false},
		{"GetCharge", "by out_trade_no", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.GetCharge(ctx, ChargeKey{OutTradeNo: "trade" + x}, false)
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"GetCharge", "by transaction_id, refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.GetCharge(ctx, ChargeKey{TransactionID: "T-trade" + x}, true)
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"LookupCharge", "refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			c, _, err := s.LookupCharge(ctx, ChargeKey{OutTradeNo: "pend" + x}, true)
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"ListAgreements", "sub_mchid filter", func(ctx context.Context, s *Service, x string) (result, error) {
			return agreements(s.ListAgreements(ctx, AgreementFilter{SubMchID: "mch" + x}))
		}, asEmpty, nil, false},
		{"ListAgreements", "by openid", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := agreements(s.ListAgreements(ctx, AgreementFilter{OpenID: "oU"}))
			return slices.DeleteFunc(r, func(id string) bool { return id != "mch"+x }), err
		}, asEmpty, nil, false},
		{"ListCharges", "sub_mchid filter", func(ctx context.Context, s *Service, x string) (result, error) {
			return charges(s.ListCharges(ctx, ChargeFilter{SubMchID: "mch" + x}))
		}, asEmpty, nil, false},
		{"ListCharges", "by contract", func(ctx context.Context, s *Service, x string) (result, error) {
			return charges(s.ListCharges(ctx, ChargeFilter{ContractID: "wc" + x}))
		}, asEmpty, nil, false},
		{"CreatePresignSession", "naming the sub-merchant", func(ctx context.Context, s *Service, x string) (result, error) {
			out, err := s.CreatePresignSession(ctx, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "new" + x, Merchant: Merchant{SubMchID: "mch" + x}})
			return one(out.Agreement.SubMchID, err)
		}, asDenied, nil, false},
		{"CreatePresignSession", "replay of the code", func(ctx context.Context, s *Service, x string) (result, error) {
			// No sub_mchid: a caller of A alone presigns for A; Anonymous
			// for the deployment's, so its replay of B's code is a reuse.
			out, err := s.CreatePresignSession(ctx, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "pcode" + x})
			return one(out.Agreement.SubMchID, err)
		}, asReused, func(ctx context.Context, s *Service) error {
			_, err := s.CreatePresignSession(ctx, PresignInput{PlanID: 7, OpenID: "other", OutContractCode: "pcodeA"})
			return err
		}, true},
		{"CreateCharge", "on the contract", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.CreateCharge(ctx, isoCharge("new"+x, "wc"+x))
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"CreateCharge", "replay on the contract", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.CreateCharge(ctx, isoCharge("trade"+x, "wc"+x))
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"CreateCharge", "out_trade_no on the caller's contract", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.CreateCharge(ctx, isoCharge("trade"+x, "wcA"))
			return one(c.SubMchID, err)
		}, asReused, func(ctx context.Context, s *Service) error {
			in := isoCharge("tradeA", "wcA")
			in.Amount = hkd(999)
			_, err := s.CreateCharge(ctx, in)
			return err
		}, true},
		{"CloseCharge", "pending", func(ctx context.Context, s *Service, x string) (result, error) {
			c, err := s.CloseCharge(ctx, "pend"+x)
			return one(c.SubMchID, err)
		}, asMissing, nil, false},
		{"ListEvents", "sub_mchid filter", func(ctx context.Context, s *Service, x string) (result, error) {
			return events(s.ListEvents(ctx, EventFilter{SubMchID: "mch" + x}))
		}, asEmpty, nil, false},
		{"ListEvents", "all", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := events(s.ListEvents(ctx, EventFilter{}))
			return slices.DeleteFunc(r, func(id string) bool { return id != "mch"+x }), err
		}, asEmpty, nil, false},
		{"GetEvent", "by id", func(ctx context.Context, s *Service, x string) (result, error) {
			id := "evt_none"
			for _, e := range s.store.(*memStore).view().events {
				if e.SubMchID == "mch"+x {
					id = e.ID
				}
			}
			e, err := s.GetEvent(ctx, id)
			return one(e.SubMchID, err)
		}, asMissing, nil, false},
		{"StreamEvents", "sub_mchid filter", func(ctx context.Context, s *Service, x string) (result, error) {
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			var r result
			err := s.StreamEvents(ctx, EventFilter{SubMchID: "mch" + x}, func(e Event) error {
				r = append(r, e.SubMchID)
				return nil
			})
			if errors.Is(err, context.DeadlineExceeded) {
				err = nil
			}
			return r, err
		}, asEmpty, nil, false},
		{"CreateWebhookEndpoint", "naming the sub-merchant", func(ctx context.Context, s *Service, x string) (result, error) {
			ep, _, err := s.CreateWebhookEndpoint(ctx, WebhookEndpointInput{URL: "https://h.example", SubMchID: "mch" + x})
			return ep.SubMchIDs, err
		}, asDenied, nil, false},
		{"GetWebhookEndpoint", "", func(ctx context.Context, s *Service, x string) (result, error) {
			ep, err := s.GetWebhookEndpoint(ctx, "hook"+x)
			return ep.SubMchIDs, err
		}, asMissing, nil, false},
		{"EnableWebhookEndpoint", "", func(ctx context.Context, s *Service, x string) (result, error) {
			ep, err := s.EnableWebhookEndpoint(ctx, "hook"+x)
			return ep.SubMchIDs, err
		}, asMissing, nil, false},
		{"DeleteWebhookEndpoint", "", func(ctx context.Context, s *Service, x string) (result, error) {
			return one("mch"+x, s.DeleteWebhookEndpoint(ctx, "hook"+x))
		}, asMissing, nil, false},
		{"ListWebhookEndpoints", "", func(ctx context.Context, s *Service, x string) (result, error) {
			eps, err := s.ListWebhookEndpoints(ctx)
			var r result
			for _, ep := range eps {
				r = append(r, ep.SubMchIDs...)
			}
			return slices.DeleteFunc(r, func(id string) bool { return id != "mch"+x }), err
		}, asEmpty, nil, false},
		{"ListWebhookDeliveries", "", func(ctx context.Context, s *Service, x string) (result, error) {
			ds, err := s.ListWebhookDeliveries(ctx, WebhookDeliveryFilter{EndpointID: "hook" + x})
			return deliveries(ds, err)
		}, asMissing, nil, false},
		{"Redeliver", "", func(ctx context.Context, s *Service, x string) (result, error) {
			return deliveries(s.Redeliver(ctx, "evt"+x))
		}, asMissing, nil, false},
		{"CreateRefund", "of the charge", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.CreateRefund(ctx, isoRefund("new"+x, "trade"+x))
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"CreateRefund", "of the charge by transaction_id", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.CreateRefund(ctx, RefundInput{OutRefundNo: "new" + x, TransactionID: "T-trade" + x, Amount: hkd(100), Reason: "returned"})
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"CreateRefund", "replay", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.CreateRefund(ctx, isoRefund("rfnd"+x, "trade"+x))
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"CreateRefund", "out_refund_no on the caller's charge", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.CreateRefund(ctx, isoRefund("rfnd"+x, "tradeA"))
			return one(r.SubMchID, err)
		}, asReused, func(ctx context.Context, s *Service) error {
			in := isoRefund("rfndA", "tradeA")
			in.Amount = hkd(99)
			_, err := s.CreateRefund(ctx, in)
			return err
		}, true},
		{"GetRefund", "by out_refund_no", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.GetRefund(ctx, RefundKey{OutRefundNo: "rfnd" + x}, false)
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"GetRefund", "by refund_id, refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := s.GetRefund(ctx, RefundKey{RefundID: "R-rfnd" + x}, true)
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"LookupRefund", "refresh", func(ctx context.Context, s *Service, x string) (result, error) {
			r, _, err := s.LookupRefund(ctx, RefundKey{OutRefundNo: "rfnd" + x}, true)
			return one(r.SubMchID, err)
		}, asMissing, nil, false},
		{"ListRefunds", "sub_mchid filter", func(ctx context.Context, s *Service, x string) (result, error) {
			return refunds(s.ListRefunds(ctx, RefundFilter{SubMchID: "mch" + x}))
		}, asEmpty, nil, false},
		{"ListRefunds", "by out_trade_no", func(ctx context.Context, s *Service, x string) (result, error) {
			return refunds(s.ListRefunds(ctx, RefundFilter{OutTradeNo: "trade" + x}))
		}, asEmpty, nil, false},
		{"ListRefunds", "all", func(ctx context.Context, s *Service, x string) (result, error) {
			r, err := refunds(s.ListRefunds(ctx, RefundFilter{}))
			return slices.DeleteFunc(r, func(id string) bool { return id != "mch"+x }), err
		}, asEmpty, nil, false},
		{"TerminateAgreement", "signed", func(ctx context.Context, s *Service, x string) (result, error) {
			a, err := s.TerminateAgreement(ctx, "wc"+x, "moved away")
			return one(a.SubMchID, err)
		}, asMissing, nil, false},
	}

	// Every method that takes a context is here, or said to act for no
	// caller.
	noCaller := map[string]bool{
		"HandleNotification": true, // WeChat's callback, verified by signature
		"Reconcile":          true, // papayd's own background work
		"RecordRefusal":      true, // writes the audit entry of the caller's own refused call
		"ListAuditEntries":   true, // refused to a caller limited to sub-merchants (TestAuditNeedsAnUnlimitedKey)
		"Authenticate":       true, // makes the caller, from a token
		"AuthenticateName":   true, // makes the caller, from a verified client certificate
		"CreateKey":          true, // key management: the operator's CLI on the data directory, no RPC
		"ListKeys":           true,
		"RevokeKey":          true,
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.method] = true
	}
	ctxType := reflect.TypeFor[context.Context]()
	typ := reflect.TypeFor[*Service]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		takesCtx := m.Type.NumIn() > 1 && m.Type.In(1) == ctxType
		switch {
		case takesCtx && !covered[m.Name] && !noCaller[m.Name]:
			t.Errorf("(*Service).%s takes a context but is not in the isolation table: add its cases, or add it to noCaller saying why", m.Name)
		case !takesCtx && (covered[m.Name] || noCaller[m.Name]):
			t.Errorf("(*Service).%s is listed but takes no context", m.Name)
		}
		delete(covered, m.Name)
		delete(noCaller, m.Name)
	}
	for name := range covered {
		t.Errorf("the table lists (*Service).%s, which does not exist", name)
	}
	for name := range noCaller {
		t.Errorf("noCaller lists (*Service).%s, which does not exist", name)
	}

	callerA := WithCaller(context.Background(), Caller{KeyID: "k1", Name: "A", SubMchIDs: []string{"mchA"}})
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			t.Run("A on B", func(t *testing.T) {
				f := newIsoFixture(t)
				before := f.store.view().memState
				got, err := tt.run(callerA, f.svc, "B")
				if len(got) != 0 {
					t.Errorf("answered records of %v", got)
				}
				switch tt.answer {
				case asMissing:
					_, want := tt.run(callerA, newIsoFixture(t).svc, "Z")
					sameAnswer(t, err, want)
				case asDenied:
					if !errors.Is(err, ErrPermissionDenied) {
						t.Fatalf("err = %v, want PERMISSION_DENIED", err)
					}
				case asReused:
					sameAnswer(t, err, tt.ref(callerA, newIsoFixture(t).svc))
				case asEmpty:
					if err != nil {
						t.Fatalf("err = %v, want an empty page", err)
					}
				}
				if n := f.calls(); n != 0 {
					t.Errorf("%d WeChat calls", n)
				}
				after := f.store.view().memState
				if diff := cmp.Diff(before, after, cmp.AllowUnexported(memState{}, memWebhooks{})); diff != "" {
					t.Errorf("store changed (-before +after):\n%s", diff)
				}
			})
			t.Run("A on A", func(t *testing.T) {
				got, err := tt.run(callerA, newIsoFixture(t).svc, "A")
				if err != nil || len(got) == 0 || slices.ContainsFunc(got, func(id string) bool { return id != "mchA" }) {
					t.Fatalf("answered records of %v, err %v; want A's", got, err)
				}
			})
			t.Run("anonymous on B", func(t *testing.T) {
				if tt.anonymousFails {
					t.Skip("the case names A's records")
				}
				got, err := tt.run(context.Background(), newIsoFixture(t).svc, "B")
				if err != nil || !slices.Contains(got, "mchB") {
					t.Fatalf("answered records of %v, err %v; want B's", got, err)
				}
			})
		})
	}
}

// TestPresignDefaultSubMchID pins the sub_mchid a presign without one
// gets: the caller's only sub-merchant, else the deployment's
// (1900000109) if the caller sees it, else none (sub_mchid is required).
func TestPresignDefaultSubMchID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		caller Caller
		want   string // "" : INVALID_ARGUMENT on sub_mchid
	}{
		{"anonymous", Anonymous, "1900000109"},
		{"one", Caller{SubMchIDs: []string{"mchA"}}, "mchA"},
		{"several with the default", Caller{SubMchIDs: []string{"mchA", "1900000109"}}, "1900000109"},
		{"several without the default", Caller{SubMchIDs: []string{"mchA", "mchB"}}, ""},
	} {
		f := newFixture()
		out, err := f.svc.CreatePresignSession(WithCaller(context.Background(), tt.caller), PresignInput{PlanID: 7, OpenID: "oU"})
		if tt.want == "" {
			if e := AsError(err); e.Kind != KindInvalid || len(e.Violations) == 0 || e.Violations[0].Field != "sub_mchid" {
				t.Errorf("%s: err = %v, want sub_mchid required", tt.name, err)
			}
			continue
		}
		if err != nil || out.Agreement.SubMchID != tt.want {
			t.Errorf("%s: sub_mchid %q, err %v; want %q", tt.name, out.Agreement.SubMchID, err, tt.want)
		}
	}
}

// TestVisibleSubMchIDs pins how a list filter is narrowed to the caller:
// intersected, and empty (ok false) rather than unrestricted when nothing
// is left.
func TestVisibleSubMchIDs(t *testing.T) {
	t.Parallel()
	ab := Caller{SubMchIDs: []string{"a", "b"}}
	for _, tt := range []struct {
		name   string
		caller Caller
		one    string
		set    []string
		want   []string
		wantOK bool
	}{
		{"anonymous", Anonymous, "x", nil, nil, true},
		{"anonymous keeps a set", Anonymous, "", []string{"x"}, []string{"x"}, true},
		{"limited", ab, "", nil, []string{"a", "b"}, true},
		{"limited, own sub_mchid", ab, "b", nil, []string{"a", "b"}, true},
		{"limited, foreign sub_mchid", ab, "x", nil, nil, false},
		{"limited, set intersected", ab, "", []string{"b", "x"}, []string{"b"}, true},
		{"limited, set disjoint", ab, "", []string{"x"}, nil, false},
	} {
		got, ok := visibleSubMchIDs(WithCaller(context.Background(), tt.caller), tt.one, tt.set)
		if ok != tt.wantOK || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}
