package service

import (
	"context"
	"errors"
	"testing"
	"time"
)

func reconcile(t *testing.T, f *fixture) ReconcileReport {
	t.Helper()
	r, err := f.svc.Reconcile(context.Background())
	if err != nil {
		t.Logf("reconcile: %v", err)
	}
	return r
}

func TestReconcileFindsALostDeduction(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx := context.Background()
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
	}
	if c := f.charge(t, chargeIn("T1")); c.State != ChargePending {
		t.Fatalf("charge %s", c.State)
	}
	f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000)}
	// Not due before FirstCheck.
	if r := reconcile(t, f); r.Charges != 0 {
		t.Fatalf("queried before it was due: %+v", r)
	}
	f.clock.advance(5 * time.Second)
	if r := reconcile(t, f); r.Charges != 1 || r.Errors != 0 {
		t.Fatalf("report %+v", r)
	}
	c, _ := f.store.ChargeByOutTradeNo(ctx, "T1")
	if c.State != ChargeSucceeded || c.TransactionID != "X1" {
		t.Fatalf("after reconcile: %+v", c)
	}
	f.clock.advance(time.Hour)
	if r := reconcile(t, f); r.Charges != 0 {
		t.Fatalf("a final charge is still due: %+v", r)
	}
}

func TestReconcileClosesUnpaidCharges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("never reached WeChat", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", errors.New("connection refused"))
		}
		f.charge(t, chargeIn("T1"))
		f.wc.orderErr = &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}
		f.wc.reverseErr = &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
		f.clock.advance(5 * time.Second)
		reconcile(t, f)
		c, _ := f.store.ChargeByOutTradeNo(ctx, "T1")
		if c.State != ChargePending || c.CheckAttempts != 1 || !c.NextCheckTime.Equal(t0.Add(20*time.Second)) {
			t.Fatalf("before the timeout: %+v", c)
		}
		f.clock.advance(31 * time.Minute)
		if r := reconcile(t, f); r.Closed != 1 {
			t.Fatalf("report %+v", r)
		}
		if c, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeClosed {
			t.Fatalf("after the timeout: %s", c.State)
		}
		if open, _ := f.store.OpenIntents(ctx); len(open) != 0 {
			t.Fatalf("intents left: %+v", open)
		}
	})
	t.Run("paid at the last moment", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeUserPaying, Amount: req.Amount}, nil
		}
		f.charge(t, chargeIn("T1"))
		f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeUserPaying, Amount: hkd(1000)}
		f.wc.reverseErr = &RemoteError{HTTPStatus: 400, Code: "ORDER_PAID"}
		f.clock.advance(31 * time.Minute)
		reconcile(t, f)
		// The reverse says paid; the refresh then reads SUCCESS.
		f.wc.order.TradeState = TradeSuccess
		f.clock.advance(time.Hour)
		reconcile(t, f)
		if c, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeSucceeded {
			t.Fatalf("state %s", c.State)
		}
	})
}

func TestReconcileAgreements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oA", OutContractCode: "SIGNED-LOST"})
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oB", OutContractCode: "NEVER"})
	f.wc.queryFn = func(q ContractQuery) (RemoteContract, error) {
		if q.OutContractCode == "SIGNED-LOST" || q.ContractID == "W1" {
			return f.wc.contract, nil
		}
		return RemoteContract{}, &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
	}
	f.wc.contract = RemoteContract{ContractID: "W1", OutContractCode: "SIGNED-LOST", PlanID: 7, OpenID: "oA", State: "SIGNED", SignedTime: t0}
	f.clock.advance(5 * time.Second)
	if r := reconcile(t, f); r.Agreements != 2 {
		t.Fatalf("report %+v", r)
	}
	a, _ := f.store.AgreementByOutContractCode(ctx, "SIGNED-LOST")
	if a.State != AgreementSigned || a.ContractID != "W1" || !a.NextCheckTime.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("signed agreement %+v", a)
	}
	b, _ := f.store.AgreementByOutContractCode(ctx, "NEVER")
	if b.State != AgreementPending || b.CheckAttempts != 1 {
		t.Fatalf("pending agreement %+v", b)
	}
	// The session ends unsigned: EXPIRED, and no longer due.
	f.clock.advance(2 * time.Hour)
	reconcile(t, f)
	if b, _ := f.store.AgreementByOutContractCode(ctx, "NEVER"); b.State != AgreementExpired {
		t.Fatalf("expired session: %s", b.State)
	}
	// The termination's notification went to a wrong URL: the daily check finds it.
	f.wc.contract.State, f.wc.contract.TerminationMode, f.wc.contract.TerminatedTime = "TERMINATED", TerminatedByUser, f.clock.Now()
	f.clock.advance(23 * time.Hour)
	if r := reconcile(t, f); r.Agreements != 1 {
		t.Fatalf("report %+v", r)
	}
	if a, _ := f.store.AgreementByOutContractCode(ctx, "SIGNED-LOST"); a.State != AgreementTerminated || a.TerminationMode != TerminatedByUser {
		t.Fatalf("terminated agreement %+v", a)
	}
	f.clock.advance(48 * time.Hour)
	if r := reconcile(t, f); r.Agreements != 0 {
		t.Fatalf("ended agreements are still due: %+v", r)
	}
}

func TestIntentsAreResumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	f.wc.termErr = &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "member left"); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("terminate: %v", err)
	}
	if open, _ := f.store.OpenIntents(ctx); len(open) != 1 || open[0].Kind != IntentTerminate || open[0].Note != "member left" {
		t.Fatalf("intents %+v", open)
	}
	f.wc.termErr = nil
	if r := reconcile(t, f); r.Intents != 1 || r.Errors != 0 {
		t.Fatalf("report %+v", r)
	}
	a, _ := f.store.AgreementByContractID(ctx, "W1")
	if a.State != AgreementTerminated || a.TerminationMode != TerminatedByMerchant || a.TerminationNote != "member left" {
		t.Fatalf("resumed termination: %+v", a)
	}
	if open, _ := f.store.OpenIntents(ctx); len(open) != 0 {
		t.Fatalf("intents left %+v", open)
	}

	// A close whose answer was lost is resumed too.
	g := chargeFixture(t)
	g.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeNotPay, Amount: req.Amount}, nil
	}
	g.charge(t, chargeIn("T1"))
	g.wc.reverseErr = &RemoteError{HTTPStatus: 503, Code: "SERVICE_UNAVAILABLE"}
	if _, err := g.svc.CloseCharge(ctx, "T1"); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("close: %v", err)
	}
	g.wc.reverseErr = nil
	reconcile(t, g)
	if c, _ := g.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeClosed {
		t.Fatalf("resumed close: %s", c.State)
	}
	if len(g.wc.reverses) != 2 {
		t.Fatalf("%d reverse calls, want 2", len(g.wc.reverses))
	}
}

// A failing store (a full disk) ends the pass at the first record: WeChat
// is not asked about answers that cannot be recorded, and the pass says
// ErrStoreFailing so that the reconciler backs off.
func TestReconcileStopsOnAFailingStore(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
	}
	for _, no := range []string{"T1", "T2", "T3", "T4"} {
		f.charge(t, chargeIn(no))
	}
	f.wc.orderFn = func(q TransactionQuery) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: q.OutTradeNo, TransactionID: "X-" + q.OutTradeNo, TradeState: TradeSuccess, Amount: hkd(1000)}, nil
	}
	queries := 0
	inner := f.wc.orderFn
	f.wc.orderFn = func(q TransactionQuery) (RemoteTransaction, error) { queries++; return inner(q) }
	f.store.mu.Lock()
	f.store.failWrites = errors.New("disk I/O error: database or disk is full")
	f.store.mu.Unlock()
	f.clock.advance(5 * time.Second)
	_, err := f.svc.Reconcile(context.Background())
	if !errors.Is(err, ErrStoreFailing) {
		t.Fatalf("pass on a failing store: %v, want ErrStoreFailing", err)
	}
	if queries != 1 {
		t.Fatalf("%d order queries on a failing store, want 1", queries)
	}
}
