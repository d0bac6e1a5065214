package service

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Unit tests of the money invariants (see also tests/money_test.go).

func unavailable() (RemoteTransaction, error) {
	return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
}

func (f *fixture) stored(t *testing.T, no string) Charge {
	t.Helper()
	c, err := f.store.ChargeByOutTradeNo(context.Background(), no)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A refusal that answers a resend of a PENDING charge is not final: WeChat
// is asked what became of the order.
func TestRefusedResendOfPendingChargeIsQueried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		order RemoteTransaction
		err   error
		want  ChargeState
	}{
		{"paid", RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000)}, nil, ChargeSucceeded},
		{"payment failed", RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradePayError, Amount: hkd(1000)}, nil, ChargeFailed},
		{"no order", RemoteTransaction{}, &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}, ChargePending},
		{"query unavailable", RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded), ChargePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := chargeFixture(t)
			f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) { return unavailable() }
			if c := f.charge(t, chargeIn("T1")); c.State != ChargePending {
				t.Fatalf("first send: %s", c.State)
			}
			f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
				return RemoteTransaction{}, &RemoteError{HTTPStatus: 400, Code: "OUT_TRADE_NO_USED", Message: "used"}
			}
			f.wc.order, f.wc.orderErr = tc.order, tc.err
			c := f.charge(t, chargeIn("T1"))
			if c.State != tc.want || c.FailureCode == "OUT_TRADE_NO_USED" {
				t.Fatalf("after a refused resend: %s (%s), want %s", c.State, c.FailureCode, tc.want)
			}
		})
	}
}

// The first send's refusal is final, as before.
func TestRefusedFirstSendIsFinal(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH", Message: "balance"}
	}
	if c := f.charge(t, chargeIn("T1")); c.State != ChargeFailed || c.FailureCode != "NOT_ENOUGH" {
		t.Fatalf("refused charge: %+v", c)
	}
}

// A resend sends what the charge was created with, never the current
// configuration, and moves the unpaid timeout.
func TestResendSendsTheStoredRequest(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) { return unavailable() }
	in := chargeIn("T1")
	in.Attach, in.SceneInfo = "a", SceneInfo{DeviceID: "d1", DeviceIP: "10.0.0.1"}
	f.charge(t, in)
	f.svc.cfg.NotifyURL = "https://moved.example/notify"
	f.svc.cfg.MerchantCategoryCode = "9999" // the input names none: the default at creation applies
	f.clock.advance(time.Minute)
	in.MerchantCategoryCode = "5812"
	f.charge(t, in)
	if len(f.wc.deductions) != 2 || f.wc.deductions[0] != f.wc.deductions[1] {
		t.Fatalf("resend differs from the first send:\n%+v\n%+v", f.wc.deductions[0], f.wc.deductions[1])
	}
	if c := f.stored(t, "T1"); !c.LastSendTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last send %v", c.LastSendTime)
	}
}

// A close that finds no order while a deduction may be in flight is
// CLOSING; a later query that finds it paid makes it SUCCEEDED; one that
// finds nothing after the in-flight window makes it CLOSED.
func TestCloseWithoutOrderWaitsForDeductionsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) *fixture {
		f := chargeFixture(t)
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) { return unavailable() }
		f.charge(t, chargeIn("T1"))
		f.wc.reverseErr = &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
		f.wc.orderErr = &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}
		c, err := f.svc.CloseCharge(ctx, "T1")
		if err != nil || c.State != ChargeClosing {
			t.Fatalf("close: %+v %v", c, err)
		}
		if again, err := f.svc.CloseCharge(ctx, "T1"); err != nil || again.State != ChargeClosing {
			t.Fatalf("second close: %+v %v", again, err)
		}
		if c := f.charge(t, chargeIn("T1")); c.State != ChargeClosing || len(f.wc.deductions) != 1 {
			t.Fatalf("a retry of a closing charge resent it (%d sends) or answered %s", len(f.wc.deductions), c.State)
		}
		return f
	}
	t.Run("deducted after all", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.wc.order, f.wc.orderErr = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000)}, nil
		f.clock.advance(5 * time.Second)
		reconcile(t, f)
		if c := f.stored(t, "T1"); c.State != ChargeSucceeded || c.TransactionID != "X1" {
			t.Fatalf("after the late deduction: %+v", c)
		}
	})
	t.Run("never received", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		for range 3 {
			f.clock.advance(20 * time.Second)
			reconcile(t, f)
			if c := f.stored(t, "T1"); c.State != ChargeClosing {
				t.Fatalf("within the in-flight window: %s", c.State)
			}
		}
		f.clock.advance(time.Minute) // past 2m after the send
		if r := reconcile(t, f); r.Closed != 1 {
			t.Fatalf("report %+v", r)
		}
		if c := f.stored(t, "T1"); c.State != ChargeClosed {
			t.Fatalf("after the in-flight window: %s", c.State)
		}
	})
	t.Run("an unpaid order turned up", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.wc.order, f.wc.orderErr = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeUserPaying, Amount: hkd(1000)}, nil
		f.wc.reverseErr = nil
		f.clock.advance(5 * time.Second)
		reconcile(t, f)
		if c := f.stored(t, "T1"); c.State != ChargeClosed || len(f.wc.reverses) != 2 {
			t.Fatalf("state %s after %d reverses", c.State, len(f.wc.reverses))
		}
	})
}

// The unpaid timeout counts from the last send, not from the creation.
func TestUnpaidTimeoutCountsFromTheLastSend(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) { return unavailable() }
	f.charge(t, chargeIn("T1"))
	f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeNotPay, Amount: hkd(1000)}
	f.clock.advance(29 * time.Minute)
	f.charge(t, chargeIn("T1")) // resent at 29m
	f.clock.advance(2 * time.Minute)
	reconcile(t, f)
	if len(f.wc.reverses) != 0 {
		t.Fatalf("closed 2m after a resend")
	}
	f.clock.advance(30 * time.Minute)
	reconcile(t, f)
	if len(f.wc.reverses) != 1 || f.stored(t, "T1").State != ChargeClosed {
		t.Fatalf("not closed 32m after the resend: %d reverses", len(f.wc.reverses))
	}
}

// A final charge is queried again 10 minutes and 24 hours after it became
// final, then never; a wrongly final one is corrected and flagged.
func TestFinalChargesAreRechecked(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
	}
	if c := f.charge(t, chargeIn("T1")); c.State != ChargeFailed || !c.NextCheckTime.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("refused: %s next check %v", c.State, c.NextCheckTime)
	}
	f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradePayError, Amount: hkd(1000)}
	f.clock.advance(9 * time.Minute)
	if r := reconcile(t, f); r.Rechecked != 0 {
		t.Fatalf("re-checked early: %+v", r)
	}
	f.clock.advance(time.Minute)
	if r := reconcile(t, f); r.Rechecked != 1 {
		t.Fatalf("first re-check: %+v", r)
	}
	if c := f.stored(t, "T1"); c.State != ChargeFailed || !c.NextCheckTime.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("after the first re-check: %s next %v", c.State, c.NextCheckTime)
	}
	// WeChat took the money after all (say, a bank's late answer).
	f.wc.order.TradeState = TradeSuccess
	f.clock.advance(24 * time.Hour)
	if r := reconcile(t, f); r.Rechecked != 1 {
		t.Fatalf("second re-check: %+v", r)
	}
	c := f.stored(t, "T1")
	if c.State != ChargeSucceeded {
		t.Fatalf("a charge WeChat reports paid is %s", c.State)
	}
	if n := len(f.store.view().anomalies); n != 1 {
		t.Fatalf("%d anomalies, want the final state change", n)
	}
	// It changed state, so its own re-checks start again; after those, none.
	for range 2 {
		f.clock.advance(25 * time.Hour)
		if r := reconcile(t, f); r.Rechecked != 1 {
			t.Fatalf("re-check of the corrected charge: %+v", r)
		}
	}
	f.clock.advance(100 * time.Hour)
	if r := reconcile(t, f); r.Rechecked != 0 || !f.stored(t, "T1").NextCheckTime.IsZero() {
		t.Fatalf("re-checked past the schedule: %+v", r)
	}
}

// A re-check that finds a SUCCEEDED charge unknown to WeChat flags it.
func TestRecheckFlagsASucceededChargeWeChatDoesNotKnow(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.charge(t, chargeIn("T1"))
	f.wc.orderErr = &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}
	f.clock.advance(10 * time.Minute)
	reconcile(t, f)
	as := f.store.view().anomalies
	if len(as) != 1 || as[0].Kind != AnomalyRecheck || f.stored(t, "T1").State != ChargeSucceeded {
		t.Fatalf("anomalies %+v", as)
	}
}

// An expired agreement is re-checked; one WeChat reports signed is fixed
// and flagged.
func TestExpiredAgreementsAreRechecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oA", OutContractCode: "C1"})
	f.wc.queryErr = &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
	f.clock.advance(2 * time.Hour) // past the session's end
	reconcile(t, f)
	a, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	if a.State != AgreementExpired || !a.NextCheckTime.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("expired: %s next %v", a.State, a.NextCheckTime)
	}
	f.wc.queryErr = nil
	f.wc.contract = RemoteContract{ContractID: "W1", OutContractCode: "C1", PlanID: 7, OpenID: "oA", State: "SIGNED", SignedTime: t0}
	f.clock.advance(10 * time.Minute)
	if r := reconcile(t, f); r.Rechecked != 1 {
		t.Fatalf("report %+v", r)
	}
	a, _ = f.store.AgreementByOutContractCode(ctx, "C1")
	if a.State != AgreementSigned || a.ContractID != "W1" || len(f.store.view().anomalies) != 1 {
		t.Fatalf("after the re-check: %+v, %d anomalies", a, len(f.store.view().anomalies))
	}
}

// Waiting for a record's lock gives up with the caller's context.
func TestLockWaitHonoursTheContext(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	unlock, err := f.svc.locks.lock(context.Background(), "charge/T1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := f.svc.CreateCharge(ctx, chargeIn("T1")); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CreateCharge behind a held lock: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CreateCharge waited for the lock past its deadline")
	}
	unlock()
	if _, err := f.svc.CreateCharge(context.Background(), chargeIn("T1")); err != nil {
		t.Fatal(err)
	}
	if len(f.svc.locks.locks) != 0 {
		t.Fatalf("locks left: %d", len(f.svc.locks.locks))
	}
}

// A notification id is scoped by the merchants its resource names: the
// same id about another sub-merchant is another notification.
func TestNotificationIDIsScopedByMerchant(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	for _, tc := range []struct {
		sub  string
		want Outcome
	}{{"1900000109", OutcomeUnmatched}, {"1900000110", OutcomeUnmatched}, {"1900000109", OutcomeDuplicate}} {
		n := Notification{ID: "N1", SpMchID: "1900000100", SubMchID: tc.sub, EventType: EventContractSigned,
			Contract: &ContractEvent{OutContractCode: "NOPE-" + tc.sub, ContractID: "W-" + tc.sub, PlanID: 7}}
		if o, err := f.svc.HandleNotification(ctx, n); err != nil || o != tc.want {
			t.Fatalf("N1 of %s: %v %v, want %v", tc.sub, o, err, tc.want)
		}
	}
	if n := len(f.store.view().notifications); n != 2 {
		t.Fatalf("%d notifications recorded, want 2", n)
	}
}

func TestVerifyComparesEveryRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t) // agreement C1, SIGNED as W1
	f.charge(t, chargeIn("PAID"))
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) { return unavailable() }
	f.charge(t, chargeIn("OPEN"))
	f.wc.contract = RemoteContract{ContractID: "W1", OutContractCode: "C1", PlanID: 7, State: "SIGNED"}
	orders := map[string]RemoteTransaction{
		"PAID": {OutTradeNo: "PAID", TransactionID: "T-PAID", TradeState: TradeSuccess, Amount: hkd(1000)},
		"OPEN": {OutTradeNo: "OPEN", TradeState: TradeNotPay, Amount: hkd(1000)},
	}
	waits := 0
	wait := func(context.Context) error { waits++; return nil }
	verify := func() VerifyReport {
		t.Helper()
		f.wc.mu.Lock()
		f.wc.orderFn = func(q TransactionQuery) (RemoteTransaction, error) {
			if o, ok := orders[q.OutTradeNo]; ok {
				return o, nil
			}
			return RemoteTransaction{}, &RemoteError{HTTPStatus: 404, Code: "ORDER_NOT_EXIST"}
		}
		f.wc.mu.Unlock()
		r, err := Verify(ctx, f.store, f.wc, wait)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := verify(); r.Records != 3 || len(r.Mismatches) != 0 || len(r.Unverified) != 0 || waits != 3 {
		t.Fatalf("consistent records: %+v after %d waits", r, waits)
	}
	// WeChat took the money of the open charge, and knows nothing of the paid one.
	orders["OPEN"] = RemoteTransaction{OutTradeNo: "OPEN", TransactionID: "T-OPEN", TradeState: TradeSuccess, Amount: hkd(1000)}
	delete(orders, "PAID")
	f.wc.contract.State = "TERMINATED"
	r := verify()
	if len(r.Mismatches) != 3 {
		t.Fatalf("mismatches %v", r.Mismatches)
	}
	if c := f.stored(t, "OPEN"); c.State != ChargePending {
		t.Fatalf("verify changed a record: %s", c.State)
	}
	stop := errors.New("stop")
	if _, err := Verify(ctx, f.store, f.wc, func(context.Context) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("a failing wait: %v", err)
	}
}

// Amounts are bounded per charge: by default about USD 15,000 in every
// currency, and by configuration.
func TestChargeAmountIsBounded(t *testing.T) {
	t.Parallel()
	for c := range currencies {
		if DefaultMaxChargeAmount[c] <= 0 {
			t.Errorf("no default bound for %s", c)
		}
	}
	f := chargeFixture(t)
	ctx := context.Background()
	for _, total := range []int64{1<<63 - 1, DefaultMaxChargeAmount["HKD"] + 1} {
		in := chargeIn("BIG")
		in.Amount.Total = total
		_, err := f.svc.CreateCharge(ctx, in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || len(e.Violations) != 1 || e.Violations[0].Field != "amount.total" {
			t.Fatalf("charge of %d: %v, want amount.total invalid", total, err)
		}
	}
	if len(f.wc.deductions) != 0 {
		t.Fatal("an oversized charge reached WeChat")
	}
	in := chargeIn("MAX")
	in.Amount.Total = DefaultMaxChargeAmount["HKD"]
	f.charge(t, in)
	f.svc.cfg.MaxChargeAmount = map[string]int64{"HKD": 500}
	in = chargeIn("OVER")
	in.Amount.Total = 501
	if _, err := f.svc.CreateCharge(ctx, in); KindOf(err) != KindInvalid {
		t.Fatalf("charge over the configured bound: %v", err)
	}
}

func TestRefundDisagreement(t *testing.T) {
	t.Parallel()
	rf := func(st RefundState, id string) Refund {
		return Refund{OutRefundNo: "R1", OutTradeNo: "T1", RefundID: id, Amount: hkd(300), ChargeTotal: 1000, State: st, Attempts: 1}
	}
	remote := func(status string) RemoteRefund {
		return RemoteRefund{OutRefundNo: "R1", OutTradeNo: "T1", RefundID: "W1", Refund: 300, Total: 1000, Currency: "HKD", Status: status}
	}
	for _, tc := range []struct {
		name     string
		rf       Refund
		found    bool
		rr       RemoteRefund
		disagree bool
	}{
		{"succeeded, both", rf(RefundSucceeded, "W1"), true, remote("SUCCESS"), false},
		{"processing, WeChat too", rf(RefundProcessing, "W1"), true, remote("PROCESSING"), false},
		{"pending, WeChat processing", rf(RefundPending, ""), true, remote("PROCESSING"), false},
		{"pending, unknown to WeChat", rf(RefundPending, ""), false, RemoteRefund{}, false},
		{"failed, unknown to WeChat", rf(RefundFailed, ""), false, RemoteRefund{}, false},
		{"abnormal, WeChat too", rf(RefundAbnormal, "W1"), true, remote("ABNORMAL"), false},
		{"closed, REFUNDCLOSE", rf(RefundClosed, "W1"), true, remote("REFUNDCLOSE"), false},
		{"processing, WeChat settled", rf(RefundProcessing, "W1"), true, remote("SUCCESS"), true},
		{"pending, WeChat closed", rf(RefundPending, ""), true, remote("CLOSED"), true},
		{"succeeded, WeChat closed", rf(RefundSucceeded, "W1"), true, remote("CLOSED"), true},
		{"closed, WeChat succeeded", rf(RefundClosed, "W1"), true, remote("SUCCESS"), true},
		{"failed, WeChat has it", rf(RefundFailed, ""), true, remote("PROCESSING"), true},
		{"succeeded, unknown to WeChat", rf(RefundSucceeded, "W1"), false, RemoteRefund{}, true},
		{"processing with an id, unknown to WeChat", rf(RefundProcessing, "W1"), false, RemoteRefund{}, true},
		{"another amount", rf(RefundSucceeded, "W1"), true, func() RemoteRefund { r := remote("SUCCESS"); r.Refund = 301; return r }(), true},
		{"another refund id", rf(RefundSucceeded, "W1"), true, func() RemoteRefund { r := remote("SUCCESS"); r.RefundID = "W2"; return r }(), true},
	} {
		if d := refundDisagreement(tc.rf, tc.found, tc.rr); (d != "") != tc.disagree {
			t.Errorf("%s: disagreement %q, want one: %v", tc.name, d, tc.disagree)
		}
	}
}
