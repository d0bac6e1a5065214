package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// refundFixture is a chargeFixture with a SUCCEEDED charge T1 of HKD 10.00
// (transaction T-T1), paid at t0.
func refundFixture(t *testing.T) *fixture {
	t.Helper()
	f := chargeFixture(t)
	if c := f.charge(t, chargeIn("T1")); c.State != ChargeSucceeded {
		t.Fatalf("charge %s", c.State)
	}
	// What WeChat says of T1 at the charge's re-checks.
	f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "T-T1", ContractID: "W1", TradeState: TradeSuccess,
		Amount: hkd(1000), PayerTotal: 1000, PayerCurrency: "HKD", BankType: "CFT"}
	return f
}

func refundIn(no string, amount int64) RefundInput {
	return RefundInput{OutRefundNo: no, OutTradeNo: "T1", Amount: hkd(amount), Reason: "returned"}
}

func (f *fixture) refund(t *testing.T, in RefundInput) Refund {
	t.Helper()
	r, err := f.svc.CreateRefund(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateRefund(%s): %v", in.OutRefundNo, err)
	}
	return r
}

func (f *fixture) storedRefund(t *testing.T, no string) Refund {
	t.Helper()
	r, err := f.store.RefundByOutRefundNo(context.Background(), no)
	if err != nil {
		t.Fatalf("refund %s: %v", no, err)
	}
	return r
}

// refundSends is every refund call WeChat received.
func (f *fixture) refundSends() []RefundRequest {
	f.wc.mu.Lock()
	defer f.wc.mu.Unlock()
	return append([]RefundRequest(nil), f.wc.refunds...)
}

func (f *fixture) refundQueryCount() int {
	f.wc.mu.Lock()
	defer f.wc.mu.Unlock()
	return len(f.wc.refundQueries)
}

// remoteRefund is WeChat's view of refund no of T1 in status.
func remoteRefund(no string, amount int64, status string) RemoteRefund {
	return RemoteRefund{RefundID: "R-" + no, OutRefundNo: no, OutTradeNo: "T1", TransactionID: "T-T1", Status: status,
		Refund: amount, Total: 1000, Currency: "HKD", PayerRefund: amount, PayerCurrency: "HKD"}
}

func (f *fixture) refundNotify(t *testing.T, id, eventType string, rr RemoteRefund) Outcome {
	t.Helper()
	o, err := f.svc.HandleNotification(context.Background(), Notification{ID: id, EventType: eventType, Refund: &rr})
	if err != nil {
		t.Fatalf("notification %s: %v", id, err)
	}
	return o
}

func (f *fixture) refundedTotal(t *testing.T) int64 {
	t.Helper()
	return f.stored(t, "T1").RefundedTotal
}

func TestRefundValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		edit  func(*RefundInput)
		field string // "" : valid
	}{
		{"every allowed character", func(in *RefundInput) { in.OutRefundNo = "aZ09_-|*@" }, ""},
		{"out_refund_no of 64", func(in *RefundInput) { in.OutRefundNo = strings.Repeat("r", 64) }, ""},
		{"reason of 80 bytes", func(in *RefundInput) { in.Reason = strings.Repeat("r", 80) }, ""},
		{"by transaction_id", func(in *RefundInput) { in.OutTradeNo, in.TransactionID = "", "T-T1" }, ""},
		{"out_refund_no required", func(in *RefundInput) { in.OutRefundNo = "" }, "out_refund_no"},
		{"out_refund_no too long", func(in *RefundInput) { in.OutRefundNo = strings.Repeat("r", 65) }, "out_refund_no"},
		{"out_refund_no charset", func(in *RefundInput) { in.OutRefundNo = "r 1" }, "out_refund_no"},
		{"out_refund_no charset #", func(in *RefundInput) { in.OutRefundNo = "r#1" }, "out_refund_no"},
		{"no charge", func(in *RefundInput) { in.OutTradeNo = "" }, "out_trade_no"},
		{"both charge keys", func(in *RefundInput) { in.TransactionID = "T-T1" }, "out_trade_no"},
		{"out_trade_no charset", func(in *RefundInput) { in.OutTradeNo = "T|1" }, "out_trade_no"},
		{"transaction_id too long", func(in *RefundInput) { in.OutTradeNo, in.TransactionID = "", strings.Repeat("9", 33) }, "transaction_id"},
		{"amount zero", func(in *RefundInput) { in.Amount.Total = 0 }, "amount.refund"},
		{"amount negative", func(in *RefundInput) { in.Amount.Total = -1 }, "amount.refund"},
		{"currency unknown", func(in *RefundInput) { in.Amount.Currency = "XXX" }, "amount.currency"},
		{"currency missing", func(in *RefundInput) { in.Amount.Currency = "" }, "amount.currency"},
		{"reason required", func(in *RefundInput) { in.Reason = "" }, "reason"},
		{"reason too long", func(in *RefundInput) { in.Reason = strings.Repeat("退", 27) }, "reason"},
		{"reason emoji", func(in *RefundInput) { in.Reason = "bye 😀" }, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := refundFixture(t)
			in := refundIn("R1", 100)
			tc.edit(&in)
			r, err := f.svc.CreateRefund(context.Background(), in)
			if tc.field == "" {
				if err != nil || r.State != RefundProcessing {
					t.Fatalf("valid request: %v %v", r.State, err)
				}
				return
			}
			e := AsError(err)
			if e.Kind != KindInvalid || len(e.Violations) == 0 || e.Violations[0].Field != tc.field {
				t.Fatalf("err = %v (violations %+v), want invalid %s", err, e.Violations, tc.field)
			}
			if len(f.refundSends()) != 0 || len(f.store.view().refunds) != 0 {
				t.Fatal("an invalid request reached WeChat or the store")
			}
		})
	}
}

func TestRefundIsRecordedAndSent(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	mark := f.lastSeq()
	r := f.refund(t, refundIn("R1", 300))
	want := Refund{
		OutRefundNo: "R1", RefundID: "R-R1", OutTradeNo: "T1", TransactionID: "T-T1",
		Merchant: Merchant{SubMchID: "1900000109", SPAppID: "wxsp", SubAppID: "wxsub"}, Reason: "returned",
		Amount: hkd(300), ChargeTotal: 1000, NotifyURL: "https://papayd.example/wechatpay/notify",
		PayerRefund: 300, PayerCurrency: "HKD", State: RefundProcessing, CreateTime: t0, UpdateTime: t0,
		Attempts: 1, LastSendTime: t0, NextCheckTime: t0.Add(5 * time.Second),
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("refund (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.storedRefund(t, "R1")); diff != "" {
		t.Fatalf("stored (-want +got):\n%s", diff)
	}
	wantReq := []RefundRequest{{Merchant: want.Merchant, TransactionID: "T-T1", OutTradeNo: "T1", OutRefundNo: "R1",
		Reason: "returned", Refund: 300, Total: 1000, Currency: "HKD", NotifyURL: "https://papayd.example/wechatpay/notify"}}
	if diff := cmp.Diff(wantReq, f.refundSends()); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]EventType{EventRefundCreated}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	last := f.store.view().events[len(f.store.view().events)-1]
	if last.Refund == nil || last.Refund.State != RefundPending || last.SubMchID != "1900000109" || last.Charge != nil {
		t.Fatalf("refund.created carries %+v", last)
	}
	if audit := f.store.view().audit; audit[len(audit)-1].Method != "CreateRefund" || audit[len(audit)-1].Resource != "refunds/R1" {
		t.Fatalf("audit %+v", audit[len(audit)-1])
	}
	// By transaction_id, the same refund.
	in := refundIn("R1", 300)
	in.OutTradeNo, in.TransactionID = "", "T-T1"
	if again := f.refund(t, in); !cmp.Equal(again, r) || len(f.refundSends()) != 1 {
		t.Fatalf("replay by transaction_id made %d calls: %+v", len(f.refundSends()), again)
	}
}

// TestRefundStates drives a refund through each state and checks the
// events appended (one per change of state, none for PROCESSING) and the
// charge's refunded_total.
func TestRefundStates(t *testing.T) {
	t.Parallel()
	refused := func(code string, status int) func(RefundRequest) (RemoteRefund, error) {
		return func(RefundRequest) (RemoteRefund, error) {
			return RemoteRefund{}, &RemoteError{HTTPStatus: status, Code: code, Message: "no"}
		}
	}
	answered := func(status string) func(RefundRequest) (RemoteRefund, error) {
		return func(req RefundRequest) (RemoteRefund, error) {
			rr := acceptedRefund(req)
			rr.Status = status
			return rr, nil
		}
	}
	type note struct{ event, status string }
	for _, tc := range []struct {
		name      string
		answer    func(RefundRequest) (RemoteRefund, error)
		notes     []note
		state     RefundState
		lastError string
		failure   string
		events    []EventType
		total     int64
	}{
		{"accepted", nil, nil, RefundProcessing, "", "", []EventType{EventRefundCreated}, 0},
		{"answered PROCESSING", answered("PROCESSING"), nil, RefundProcessing, "", "", []EventType{EventRefundCreated}, 0},
		{"answered SUCCESS", answered("SUCCESS"), nil, RefundSucceeded, "", "",
			[]EventType{EventRefundCreated, EventRefundSucceeded}, 300},
		{"succeeded by notification", nil, []note{{NotificationRefundSuccess, "SUCCESS"}}, RefundSucceeded, "", "",
			[]EventType{EventRefundCreated, EventRefundSucceeded}, 300},
		{"closed", nil, []note{{NotificationRefundClosed, "CLOSED"}}, RefundClosed, "", "",
			[]EventType{EventRefundCreated, EventRefundClosed}, 0},
		{"closed, old spelling", answered("REFUNDCLOSE"), nil, RefundClosed, "", "",
			[]EventType{EventRefundCreated, EventRefundClosed}, 0},
		{"abnormal", nil, []note{{NotificationRefundAbnormal, "ABNORMAL"}}, RefundAbnormal, "", "",
			[]EventType{EventRefundCreated, EventRefundAbnormal}, 0},
		{"abnormal, then resolved", nil, []note{{NotificationRefundAbnormal, "ABNORMAL"}, {NotificationRefundSuccess, "SUCCESS"}},
			RefundSucceeded, "", "", []EventType{EventRefundCreated, EventRefundAbnormal, EventRefundSucceeded}, 300},
		{"abnormal, then closed", nil, []note{{NotificationRefundAbnormal, "ABNORMAL"}, {NotificationRefundClosed, "CLOSED"}},
			RefundClosed, "", "", []EventType{EventRefundCreated, EventRefundAbnormal, EventRefundClosed}, 0},
		{"refused", refused("USER_ACCOUNT_ABNORMAL", 403), nil, RefundFailed, "", "USER_ACCOUNT_ABNORMAL",
			[]EventType{EventRefundCreated, EventRefundFailed}, 0},
		{"refused OUT_REFUND_NO_USED on a first send", refused("OUT_REFUND_NO_USED", 400), nil, RefundFailed, "", "OUT_REFUND_NO_USED",
			[]EventType{EventRefundCreated, EventRefundFailed}, 0},
		{"timeout", func(RefundRequest) (RemoteRefund, error) {
			return RemoteRefund{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
		}, nil, RefundPending, "WECHATPAY_UNAVAILABLE", "", []EventType{EventRefundCreated}, 0},
		{"5xx", refused("", 502), nil, RefundPending, "WECHATPAY_UNAVAILABLE", "", []EventType{EventRefundCreated}, 0},
		{"NOT_ENOUGH", refused("NOT_ENOUGH", 403), nil, RefundPending, "NOT_ENOUGH", "", []EventType{EventRefundCreated}, 0},
		{"BIZERR_NEED_RETRY", refused("BIZERR_NEED_RETRY", 403), nil, RefundPending, "BIZERR_NEED_RETRY", "", []EventType{EventRefundCreated}, 0},
		{"SYSTEM_ERROR", refused("SYSTEM_ERROR", 500), nil, RefundPending, "SYSTEM_ERROR", "", []EventType{EventRefundCreated}, 0},
		{"FREQUENCY_LIMITED", refused("FREQUENCY_LIMITED", 429), nil, RefundPending, "FREQUENCY_LIMITED", "", []EventType{EventRefundCreated}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := refundFixture(t)
			f.wc.refund = tc.answer
			mark := f.lastSeq()
			r := f.refund(t, refundIn("R1", 300))
			for i, n := range tc.notes {
				f.clock.advance(time.Second)
				if o := f.refundNotify(t, fmt.Sprintf("n%d", i), n.event, remoteRefund("R1", 300, n.status)); o != OutcomeApplied {
					t.Fatalf("notification %d: %s", i, o)
				}
				r = f.storedRefund(t, "R1")
			}
			got := struct {
				State              RefundState
				LastError, Failure string
				Events             []EventType
				Total              int64
			}{r.State, r.LastError, r.FailureCode, f.eventTypes(mark), f.refundedTotal(t)}
			want := got
			want.State, want.LastError, want.Failure, want.Events, want.Total = tc.state, tc.lastError, tc.failure, tc.events, tc.total
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(r, f.storedRefund(t, "R1")); diff != "" {
				t.Fatalf("answered is not stored (-answer +stored):\n%s", diff)
			}
			if n := f.refundQueryCount(); n != 0 {
				t.Errorf("%d queries: a first send's answer is taken as it is", n)
			}
			switch {
			case r.State.Final() && !r.NextCheckTime.IsZero():
				t.Errorf("a final refund is scheduled at %v", r.NextCheckTime)
			case !r.State.Final() && r.NextCheckTime.IsZero():
				t.Errorf("an open refund is not scheduled")
			case r.State == RefundAbnormal && !r.NextCheckTime.Equal(f.clock.Now().Add(time.Hour)):
				t.Errorf("abnormal refund next checked at %v, want an hour on", r.NextCheckTime)
			}
			// The last event carries the refund as stored.
			if es := f.store.view().events; len(tc.events) > 1 {
				if diff := cmp.Diff(r, *es[len(es)-1].Refund); diff != "" {
					t.Errorf("last event snapshot (-stored +event):\n%s", diff)
				}
			}
		})
	}
}

// TestRefundStateMachine pins the transitions table of refund_state.go.
func TestRefundStateMachine(t *testing.T) {
	t.Parallel()
	statuses := []string{"SUCCESS", "PROCESSING", "ABNORMAL", "CLOSED", "REFUNDCLOSE", "", "WHATEVER"}
	want := map[RefundState][]RefundState{
		RefundPending:    {RefundSucceeded, RefundProcessing, RefundAbnormal, RefundClosed, RefundClosed, RefundProcessing, RefundPending},
		RefundProcessing: {RefundSucceeded, RefundProcessing, RefundAbnormal, RefundClosed, RefundClosed, RefundProcessing, RefundProcessing},
		RefundAbnormal:   {RefundSucceeded, RefundAbnormal, RefundAbnormal, RefundClosed, RefundClosed, RefundAbnormal, RefundAbnormal},
		RefundSucceeded:  {RefundSucceeded, RefundSucceeded, RefundSucceeded, RefundSucceeded, RefundSucceeded, RefundSucceeded, RefundSucceeded},
		RefundClosed:     {RefundSucceeded, RefundClosed, RefundClosed, RefundClosed, RefundClosed, RefundClosed, RefundClosed},
		RefundFailed:     {RefundSucceeded, RefundFailed, RefundFailed, RefundFailed, RefundFailed, RefundFailed, RefundFailed},
	}
	for _, from := range RefundStates {
		for i, st := range statuses {
			r := Refund{OutRefundNo: "R1", State: from, Status: "OLD"}
			r.apply(RemoteRefund{Status: st})
			if r.State != want[from][i] {
				t.Errorf("%s + %q = %s, want %s", from, st, r.State, want[from][i])
			}
			if r.State != from && !(r.State == RefundSucceeded || !from.Final()) {
				t.Errorf("final %s left for %s", from, r.State)
			}
		}
	}
	// refuse fails only a PENDING refund.
	for _, from := range RefundStates {
		r := Refund{State: from}
		if changed := r.refuse("PARAM_ERROR", "bad"); changed != (from == RefundPending) {
			t.Errorf("refuse(%s) changed %v", from, changed)
		}
	}
}

// TestRefundRules are refused locally, under the charge's lock: WeChat is
// never called and nothing is recorded.
func TestRefundRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, f *fixture)
		in   RefundInput
		want error
	}{
		{"unknown charge", nil, RefundInput{OutRefundNo: "R9", OutTradeNo: "NOPE", Amount: hkd(1), Reason: "x"}, ErrChargeNotFound},
		{"unknown transaction", nil, RefundInput{OutRefundNo: "R9", TransactionID: "T-NOPE", Amount: hkd(1), Reason: "x"}, ErrChargeNotFound},
		{"more than the charge", nil, refundIn("R9", 1001), ErrRefundExceedsCharge},
		{"more than what is left", func(t *testing.T, f *fixture) {
			f.refund(t, refundIn("R1", 600))
			f.clock.advance(time.Minute)
		}, refundIn("R9", 401), ErrRefundExceedsCharge},
		{"a pending refund counts", func(t *testing.T, f *fixture) {
			f.wc.refund = func(RefundRequest) (RemoteRefund, error) {
				return RemoteRefund{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
			}
			f.refund(t, refundIn("R1", 600))
			f.wc.refund = nil
		}, refundIn("R9", 401), ErrRefundExceedsCharge},
		{"a succeeded refund counts", func(t *testing.T, f *fixture) {
			f.refund(t, refundIn("R1", 600))
			f.refundNotify(t, "n1", NotificationRefundSuccess, remoteRefund("R1", 600, "SUCCESS"))
		}, refundIn("R9", 401), ErrRefundExceedsCharge},
		{"a pending charge", func(t *testing.T, f *fixture) {
			f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
				return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
			}
			f.charge(t, chargeIn("T2"))
		}, RefundInput{OutRefundNo: "R9", OutTradeNo: "T2", Amount: hkd(1), Reason: "x"}, ErrChargeNotRefundable},
		{"another currency", nil, RefundInput{OutRefundNo: "R9", OutTradeNo: "T1", Amount: Money{Total: 1, Currency: "USD"}, Reason: "x"},
			invalid([]FieldViolation{{Field: "amount.currency", Description: "must be the charge's currency, HKD"}})},
		{"a year and a second after", func(t *testing.T, f *fixture) {
			f.clock.advance(RefundWindow + time.Second)
		}, refundIn("R9", 1), ErrChargeTooOldToRefund},
		{"the 51st", func(t *testing.T, f *fixture) {
			seedRefunds(t, f, MaxRefundsPerCharge, RefundClosed)
		}, refundIn("R9", 1), ErrRefundLimitReached},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := refundFixture(t)
			if tc.prep != nil {
				tc.prep(t, f)
			}
			sends, rows := len(f.refundSends()), len(f.store.view().refunds)
			mark := f.lastSeq()
			_, err := f.svc.CreateRefund(context.Background(), tc.in)
			if !errors.Is(err, tc.want) || !cmp.Equal(AsError(err).Violations, AsError(tc.want).Violations) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if KindOf(err) != KindOf(tc.want) {
				t.Fatalf("kind %v, want %v", KindOf(err), KindOf(tc.want))
			}
			if len(f.refundSends()) != sends || len(f.store.view().refunds) != rows || len(f.eventTypes(mark)) != 0 {
				t.Fatalf("a refused refund reached WeChat (%d calls) or the store (%d rows)", len(f.refundSends())-sends, len(f.store.view().refunds)-rows)
			}
		})
	}
	t.Run("up to the total, and FAILED and CLOSED ones do not count", func(t *testing.T) {
		t.Parallel()
		f := refundFixture(t)
		f.refund(t, refundIn("R1", 600))
		f.refundNotify(t, "n1", NotificationRefundClosed, remoteRefund("R1", 600, "CLOSED"))
		f.clock.advance(time.Minute)
		f.wc.refund = func(RefundRequest) (RemoteRefund, error) {
			return RemoteRefund{}, &RemoteError{HTTPStatus: 400, Code: "PARAM_ERROR"}
		}
		if r := f.refund(t, refundIn("R2", 600)); r.State != RefundFailed {
			t.Fatalf("R2 %s", r.State)
		}
		f.wc.refund = nil
		f.clock.advance(time.Minute)
		if r := f.refund(t, refundIn("R3", 1000)); r.State != RefundProcessing {
			t.Fatalf("the whole charge: %s", r.State)
		}
		if len(f.refundSends()) != 3 {
			t.Fatalf("%d sends", len(f.refundSends()))
		}
	})
	t.Run("FAILED ones do not count against the 50", func(t *testing.T) {
		t.Parallel()
		f := refundFixture(t)
		seedRefunds(t, f, MaxRefundsPerCharge-1, RefundClosed)
		seedRefunds(t, f, 5, RefundFailed)
		if r := f.refund(t, refundIn("R9", 1)); r.State != RefundProcessing {
			t.Fatalf("the 50th: %s", r.State)
		}
	})
}

// seedRefunds records n refunds of T1 of 1 in state st, sent at t0 - 1h.
func seedRefunds(t *testing.T, f *fixture, n int, st RefundState) {
	t.Helper()
	err := f.store.InTx(context.Background(), func(tx Tx) error {
		for i := range n {
			at := t0.Add(-time.Hour)
			r := Refund{OutRefundNo: fmt.Sprintf("S%s%d", st, i), OutTradeNo: "T1", Amount: hkd(1), ChargeTotal: 1000,
				Reason: "seed", State: st, CreateTime: at, UpdateTime: at, Attempts: 1, LastSendTime: at}
			if err := tx.CreateRefund(context.Background(), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRefundIdempotency(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	ctx := context.Background()
	// Ten identical calls at once: one refund, one call at WeChat, the
	// same answer to all.
	f.wc.refundHook = func() { time.Sleep(20 * time.Millisecond) }
	var wg sync.WaitGroup
	got := make([]Refund, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() { got[i], errs[i] = f.svc.CreateRefund(ctx, refundIn("R1", 300)) })
	}
	wg.Wait()
	for i := range 10 {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if diff := cmp.Diff(got[0], got[i]); diff != "" {
			t.Fatalf("call %d answered another refund:\n%s", i, diff)
		}
	}
	if n := len(f.refundSends()); n != 1 || got[0].State != RefundProcessing {
		t.Fatalf("%d refund calls at WeChat, state %s", n, got[0].State)
	}
	if n := len(f.store.view().refunds); n != 1 {
		t.Fatalf("%d refunds recorded", n)
	}

	// Later replays, even once the charge is fully refunded, answer it.
	f.clock.advance(time.Minute)
	f.refund(t, refundIn("R2", 700))
	mark := f.lastSeq()
	if again := f.refund(t, refundIn("R1", 300)); !cmp.Equal(again, f.storedRefund(t, "R1")) || len(f.refundSends()) != 2 {
		t.Fatalf("replay: %+v, %d sends", again, len(f.refundSends()))
	}
	if got := f.eventTypes(mark); len(got) != 0 {
		t.Fatalf("a replay appended %v", got)
	}
	// Other parameters.
	for _, edit := range []func(*RefundInput){
		func(in *RefundInput) { in.Amount = hkd(301) },
		func(in *RefundInput) { in.Reason = "other" },
		func(in *RefundInput) { in.OutTradeNo = "T2" },
	} {
		in := refundIn("R1", 300)
		f.charge(t, chargeIn("T2"))
		edit(&in)
		_, err := f.svc.CreateRefund(ctx, in)
		if !errors.Is(err, ErrOutRefundNoReused) || KindOf(err) != KindConflict {
			t.Fatalf("reuse %+v: %v", in, err)
		}
	}
	if len(f.refundSends()) != 2 {
		t.Fatalf("a reuse reached WeChat")
	}
}

func TestRefundLookupAndList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := refundFixture(t)
	for i, no := range []string{"R1", "R2", "R3"} {
		f.clock.advance(time.Minute)
		f.refund(t, refundIn(no, int64(100*(i+1))))
	}
	// By either key.
	for _, k := range []RefundKey{{OutRefundNo: "R2"}, {RefundID: "R-R2"}} {
		r, err := f.svc.GetRefund(ctx, k, false)
		if err != nil || r.OutRefundNo != "R2" {
			t.Fatalf("GetRefund(%+v): %+v %v", k, r, err)
		}
	}
	for _, k := range []RefundKey{{OutRefundNo: "NOPE"}, {RefundID: "R-NOPE"}} {
		if _, err := f.svc.GetRefund(ctx, k, true); !errors.Is(err, ErrRefundNotFound) {
			t.Fatalf("GetRefund(%+v): %v", k, err)
		}
	}
	for k, field := range map[RefundKey]string{{}: "out_refund_no", {OutRefundNo: "R1", RefundID: "x"}: "out_refund_no",
		{OutRefundNo: "R 1"}: "out_refund_no", {RefundID: "a b"}: "refund_id"} {
		_, err := f.svc.GetRefund(ctx, k, false)
		if e := AsError(err); e.Kind != KindInvalid || e.Violations[0].Field != field {
			t.Fatalf("GetRefund(%+v): %v", k, e)
		}
	}
	if n := f.refundQueryCount(); n != 0 {
		t.Fatalf("%d queries for refunds that are not there", n)
	}
	// Refresh records WeChat's answer.
	f.wc.refundQueryFn = func(q RefundQuery) (RemoteRefund, error) {
		if q.RefundID != "R-R2" || q.SubMchID != "1900000109" {
			return RemoteRefund{}, fmt.Errorf("query %+v", q)
		}
		rr := remoteRefund("R2", 200, "SUCCESS")
		rr.SuccessTime, rr.Channel, rr.RecvAccount = t0.Add(time.Hour), "ORIGINAL", "Card 1234"
		return rr, nil
	}
	r, how, err := f.svc.LookupRefund(ctx, RefundKey{OutRefundNo: "R2"}, true)
	if err != nil || how != Refreshed || r.State != RefundSucceeded || r.Channel != "ORIGINAL" || !r.SuccessTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("refresh: %+v %v %v", r, how, err)
	}
	if f.refundedTotal(t) != 200 {
		t.Fatalf("refunded_total %d", f.refundedTotal(t))
	}
	// The outbound limit: the record, without an error.
	f.wc.refundQueryFn = func(RefundQuery) (RemoteRefund, error) {
		return RemoteRefund{}, fmt.Errorf("limited: %w", ErrRateLimited)
	}
	if r, how, err := f.svc.LookupRefund(ctx, RefundKey{OutRefundNo: "R1"}, true); err != nil || how != RefreshRateLimited || r.State != RefundProcessing {
		t.Fatalf("rate limited: %v %v %v", r.State, how, err)
	}
	// Unavailable: an error.
	f.wc.refundQueryFn = func(RefundQuery) (RemoteRefund, error) {
		return RemoteRefund{}, &RemoteError{HTTPStatus: 503, Code: "SYSTEM_ERROR"}
	}
	if _, _, err := f.svc.LookupRefund(ctx, RefundKey{OutRefundNo: "R1"}, true); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("unavailable: %v", err)
	}

	// Lists: newest first, paged, filtered.
	nos := func(rs []Refund) (out []string) {
		for _, r := range rs {
			out = append(out, r.OutRefundNo)
		}
		return out
	}
	page, next, err := f.svc.ListRefunds(ctx, RefundFilter{PageSize: 2})
	if err != nil || next == "" || !cmp.Equal(nos(page), []string{"R3", "R2"}) {
		t.Fatalf("page 1: %v %q %v", nos(page), next, err)
	}
	page, next, err = f.svc.ListRefunds(ctx, RefundFilter{PageSize: 2, PageToken: next})
	if err != nil || next != "" || !cmp.Equal(nos(page), []string{"R1"}) {
		t.Fatalf("page 2: %v %q %v", nos(page), next, err)
	}
	page, _, err = f.svc.ListRefunds(ctx, RefundFilter{State: RefundSucceeded, OutTradeNo: "T1"})
	if err != nil || !cmp.Equal(nos(page), []string{"R2"}) {
		t.Fatalf("succeeded: %v %v", nos(page), err)
	}
	if _, _, err := f.svc.ListRefunds(ctx, RefundFilter{PageSize: 2, PageToken: "bogus"}); !errors.Is(err, ErrInvalidPageToken) {
		t.Fatalf("bogus token: %v", err)
	}
	for f2, field := range map[string]RefundFilter{"state": {State: "DONE"}, "page_size": {PageSize: MaxPageSize + 1},
		"out_trade_no": {OutTradeNo: "T 1"}, "sub_mchid": {SubMchID: strings.Repeat("1", 33)}} {
		if _, _, err := f.svc.ListRefunds(ctx, field); AsError(err).Kind != KindInvalid || AsError(err).Violations[0].Field != f2 {
			t.Fatalf("ListRefunds(%+v): %v", field, err)
		}
	}
}

// TestRefundWeChatRefusesPapaydsCredentials: a 401 is no refusal of the
// refund: it stays PENDING for the reconciler, and the caller gets the
// error.
func TestRefundWeChatRefusesPapaydsCredentials(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	f.wc.refund = func(RefundRequest) (RemoteRefund, error) {
		return RemoteRefund{}, &RemoteError{HTTPStatus: 401, Message: "signature"}
	}
	_, err := f.svc.CreateRefund(context.Background(), refundIn("R1", 300))
	if !errors.Is(err, ErrWeChatAuth) {
		t.Fatalf("err = %v, want ErrWeChatAuth", err)
	}
	r := f.storedRefund(t, "R1")
	if r.State != RefundPending || r.LastError != "WECHATPAY_AUTH_FAILED" || r.NextCheckTime.IsZero() {
		t.Fatalf("after a 401: %+v", r)
	}
	f.wc.refund = nil
	f.clock.advance(5 * time.Second)
	reconcile(t, f)
	if r := f.storedRefund(t, "R1"); r.State != RefundProcessing || r.Attempts != 2 {
		t.Fatalf("after the reconciler: %+v", r)
	}
}
