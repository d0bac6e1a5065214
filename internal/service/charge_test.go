package service

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// chargeFixture is a fixture with a SIGNED agreement W1.
func chargeFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture()
	f.svc.cfg.MerchantCategoryCode = "5812"
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	f.sign(t, "C1", "W1")
	return f
}

func hkd(total int64) Money { return Money{Total: total, Currency: "HKD"} }

func chargeIn(no string) ChargeInput {
	return ChargeInput{OutTradeNo: no, ContractID: "W1", Amount: hkd(1000), Description: "Gym-Central-Monthly"}
}

func (f *fixture) charge(t *testing.T, in ChargeInput) Charge {
	t.Helper()
	c, err := f.svc.CreateCharge(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateCharge(%s): %v", in.OutTradeNo, err)
	}
	return c
}

func TestChargeSucceedsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	c := f.charge(t, chargeIn("T1"))
	want := Charge{
		OutTradeNo: "T1", TransactionID: "T-T1", ContractID: "W1", OutContractCode: "C1", OpenID: "oU",
		Merchant: Merchant{SubMchID: "1900000109", SPAppID: "wxsp", SubAppID: "wxsub"}, Amount: hkd(1000),
		PayerTotal: 1000, PayerCurrency: "HKD", Description: "Gym-Central-Monthly", MerchantCategoryCode: "5812",
		BankType: "CFT", TradeState: TradeSuccess, State: ChargeSucceeded, CreateTime: t0, UpdateTime: t0,
		NotifyURL: "https://papayd.example/wechatpay/notify", LastSendTime: t0,
		NextCheckTime: t0.Add(10 * time.Minute), // the first re-check of a final charge
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("charge (-want +got):\n%s", diff)
	}
	if got := f.wc.deductions[0]; got.NotifyURL != "https://papayd.example/wechatpay/notify" || got.MerchantCategoryCode != "5812" || got.SubMchID != "1900000109" {
		t.Fatalf("deduction request %+v", got)
	}
	again := f.charge(t, chargeIn("T1"))
	if diff := cmp.Diff(c, again); diff != "" || len(f.wc.deductions) != 1 {
		t.Fatalf("retry of a final charge made %d deductions; diff:\n%s", len(f.wc.deductions), diff)
	}
	other := chargeIn("T1")
	other.Amount = hkd(1001)
	if _, err := f.svc.CreateCharge(context.Background(), other); !errors.Is(err, ErrOutTradeNoReused) {
		t.Fatalf("reuse with another amount: %v", err)
	}
}

func TestChargeNeedsASignedAgreement(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx := context.Background()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oP", OutContractCode: "C2"})
	in := chargeIn("T1")
	in.ContractID = "NOPE"
	if _, err := f.svc.CreateCharge(ctx, in); !errors.Is(err, ErrAgreementNotSigned) || KindOf(err) != KindFailedPrecondition {
		t.Fatalf("unknown contract: %v", err)
	}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "bye"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.CreateCharge(ctx, chargeIn("T2"))
	if !errors.Is(err, ErrAgreementNotSigned) || KindOf(err) != KindFailedPrecondition {
		t.Fatalf("terminated agreement: %v", err)
	}
	if len(f.wc.deductions) != 0 || len(f.store.state.charges) != 0 {
		t.Fatal("a charge on an unsigned agreement reached WeChat or the store")
	}
}

func TestChargeOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH", Message: "balance insufficient"}
		}
		c := f.charge(t, chargeIn("T1"))
		if c.State != ChargeFailed || c.FailureCode != "NOT_ENOUGH" || c.FailureMessage != "balance insufficient" {
			t.Fatalf("refusal recorded as %+v", c)
		}
		if again := f.charge(t, chargeIn("T1")); again.State != ChargeFailed || len(f.wc.deductions) != 1 {
			t.Fatalf("retry of a refused charge called WeChat again (%d)", len(f.wc.deductions))
		}
	})

	t.Run("unknown then retried", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
		}
		c := f.charge(t, chargeIn("T1"))
		if c.State != ChargePending {
			t.Fatalf("timeout recorded as %s", c.State)
		}
		f.wc.deduct = nil
		if c := f.charge(t, chargeIn("T1")); c.State != ChargeSucceeded || len(f.wc.deductions) != 2 {
			t.Fatalf("retry: %s after %d calls", c.State, len(f.wc.deductions))
		}
		if f.wc.deductions[0].OutTradeNo != f.wc.deductions[1].OutTradeNo {
			t.Fatal("the retry used another out_trade_no")
		}
	})

	t.Run("5xx leaves pending, refresh resolves", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
		}
		if c := f.charge(t, chargeIn("T1")); c.State != ChargePending {
			t.Fatalf("5xx recorded as %s", c.State)
		}
		f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000), BankType: "CFT"}
		c, err := f.svc.GetCharge(ctx, ChargeKey{OutTradeNo: "T1"}, true)
		if err != nil || c.State != ChargeSucceeded || c.TransactionID != "X1" {
			t.Fatalf("refresh: %+v %v", c, err)
		}
		if byID, err := f.svc.GetCharge(ctx, ChargeKey{TransactionID: "X1"}, false); err != nil || byID.OutTradeNo != "T1" {
			t.Fatalf("by transaction id: %+v %v", byID, err)
		}
	})

	t.Run("userpaying settles by notification", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeUserPaying, Amount: req.Amount}, nil
		}
		if c := f.charge(t, chargeIn("T1")); c.State != ChargeProcessing {
			t.Fatalf("USERPAYING recorded as %s", c.State)
		}
		o, err := f.svc.HandleNotification(ctx, Notification{ID: "N1", EventType: EventTransactionSuccess,
			Transaction: &RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", ContractID: "W1", TradeState: TradeSuccess, Amount: hkd(1000), SuccessTime: t0}})
		if err != nil || o != OutcomeApplied {
			t.Fatalf("notification: %v %v", o, err)
		}
		if c, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeSucceeded || !c.SuccessTime.Equal(t0) {
			t.Fatalf("after notification: %+v", c)
		}
	})
}

func TestConcurrentCreateMakesOneDeduction(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	var wg sync.WaitGroup
	results := make([]Charge, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := f.svc.CreateCharge(context.Background(), chargeIn("T1"))
			if err != nil {
				t.Error(err)
			}
			results[i] = c
		}()
	}
	wg.Wait()
	if len(f.wc.deductions) != 1 {
		t.Fatalf("%d deductions, want 1", len(f.wc.deductions))
	}
	for _, c := range results {
		if c.State != ChargeSucceeded || c.TransactionID != "T-T1" {
			t.Fatalf("a caller got %+v", c)
		}
	}
}

func TestNotificationBeforeAnswer(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx := context.Background()
	var outcome Outcome
	f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		rt := RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", ContractID: "W1", TradeState: TradeSuccess, Amount: req.Amount, SuccessTime: t0}
		var err error
		outcome, err = f.svc.HandleNotification(ctx, Notification{ID: "N1", EventType: EventTransactionSuccess, Transaction: &rt})
		if err != nil {
			t.Error(err)
		}
		return rt, nil
	}
	c := f.charge(t, chargeIn("T1"))
	if outcome != OutcomeApplied || c.State != ChargeSucceeded || c.TransactionID != "X1" {
		t.Fatalf("race: notification %s, charge %+v", outcome, c)
	}
	stored, _ := f.store.ChargeByOutTradeNo(ctx, "T1")
	if diff := cmp.Diff(c, stored); diff != "" {
		t.Fatalf("answer differs from record:\n%s", diff)
	}
}

func TestTransactionNotificationChecks(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx := context.Background()
	f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeUserPaying, Amount: req.Amount}, nil
	}
	before := f.charge(t, chargeIn("T1"))
	note := func(id string, amount Money, contract string) (Outcome, error) {
		return f.svc.HandleNotification(ctx, Notification{ID: id, EventType: EventTransactionSuccess,
			Transaction: &RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", ContractID: contract, TradeState: TradeSuccess, Amount: amount}})
	}
	for _, tc := range []struct {
		id       string
		amount   Money
		contract string
	}{{"N1", hkd(999), "W1"}, {"N2", Money{Total: 1000, Currency: "USD"}, "W1"}, {"N3", hkd(1000), "W-other"}} {
		o, err := note(tc.id, tc.amount, tc.contract)
		if err != nil || o != OutcomeAnomaly {
			t.Fatalf("%s: %v %v, want ANOMALY", tc.id, o, err)
		}
	}
	if after, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); !cmp.Equal(before, after) {
		t.Fatalf("a mismatching notification changed the charge:\n%s", cmp.Diff(before, after))
	}
	if n := len(f.store.state.anomalies); n != 3 || !strings.Contains(f.store.state.anomalies[0].Detail, "amount 999") {
		t.Fatalf("anomalies %+v", f.store.state.anomalies)
	}
	if o, err := note("N4", hkd(1000), "W1"); err != nil || o != OutcomeApplied {
		t.Fatalf("matching notification: %v %v", o, err)
	}
	if o, err := note("N4", hkd(1000), "W1"); err != nil || o != OutcomeDuplicate {
		t.Fatalf("duplicate: %v %v", o, err)
	}
	if o, err := note("N5", hkd(1000), "W1"); err != nil || o != OutcomeNoop {
		t.Fatalf("second success under another id: %v %v", o, err)
	}
	o, err := f.svc.HandleNotification(ctx, Notification{ID: "N6", EventType: EventTransactionSuccess,
		Transaction: &RemoteTransaction{OutTradeNo: "ELSEWHERE", TradeState: TradeSuccess, Amount: hkd(5)}})
	if err != nil || o != OutcomeUnmatched || f.store.state.notifications["//N6"].OutTradeNo != "ELSEWHERE" {
		t.Fatalf("unknown charge: %v %v", o, err)
	}
}

func TestSuccessOverridesAFinalState(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx := context.Background()
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
	}
	f.charge(t, chargeIn("T1"))
	o, err := f.svc.HandleNotification(ctx, Notification{ID: "N1", EventType: EventTransactionSuccess,
		Transaction: &RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000)}})
	if err != nil || o != OutcomeApplied {
		t.Fatalf("%v %v", o, err)
	}
	c, _ := f.store.ChargeByOutTradeNo(ctx, "T1")
	if c.State != ChargeSucceeded || c.FailureCode != "" || len(f.store.state.anomalies) != 1 || f.store.state.anomalies[0].Kind != "FINAL_STATE_CHANGED" {
		t.Fatalf("money WeChat took must be recorded and flagged: %+v %+v", c, f.store.state.anomalies)
	}
}

func TestCloseCharge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	processing := func(t *testing.T) *fixture {
		f := chargeFixture(t)
		f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeNotPay, Amount: req.Amount}, nil
		}
		f.charge(t, chargeIn("T1"))
		return f
	}
	t.Run("unpaid", func(t *testing.T) {
		t.Parallel()
		f := processing(t)
		c, err := f.svc.CloseCharge(ctx, "T1")
		if err != nil || c.State != ChargeClosed || c.TradeState != TradeClosed || f.wc.reverses[0] != "T1" {
			t.Fatalf("close: %+v %v", c, err)
		}
		if again, err := f.svc.CloseCharge(ctx, "T1"); err != nil || again.State != ChargeClosed || len(f.wc.reverses) != 1 {
			t.Fatalf("second close: %v, %d reverses", err, len(f.wc.reverses))
		}
	})
	t.Run("already closed at WeChat", func(t *testing.T) {
		t.Parallel()
		f := processing(t)
		f.wc.reverseErr = &RemoteError{HTTPStatus: 400, Code: "ORDER_CLOSED"}
		if c, err := f.svc.CloseCharge(ctx, "T1"); err != nil || c.State != ChargeClosed {
			t.Fatalf("ORDER_CLOSED: %+v %v", c, err)
		}
	})
	t.Run("paid at WeChat", func(t *testing.T) {
		t.Parallel()
		f := processing(t)
		f.wc.reverseErr = &RemoteError{HTTPStatus: 400, Code: "ORDER_PAID"}
		f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "X1", TradeState: TradeSuccess, Amount: hkd(1000)}
		_, err := f.svc.CloseCharge(ctx, "T1")
		if !errors.Is(err, ErrOrderPaid) || KindOf(err) != KindFailedPrecondition {
			t.Fatalf("ORDER_PAID: %v", err)
		}
		if c, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeSucceeded {
			t.Fatalf("paid charge not refreshed: %s", c.State)
		}
		if _, err := f.svc.CloseCharge(ctx, "T1"); !errors.Is(err, ErrOrderPaid) || len(f.wc.reverses) != 1 {
			t.Fatalf("close of a succeeded charge: %v (%d reverses)", err, len(f.wc.reverses))
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		t.Parallel()
		f := processing(t)
		f.wc.reverseErr = &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
		if _, err := f.svc.CloseCharge(ctx, "T1"); !errors.Is(err, ErrWeChatUnavailable) {
			t.Fatalf("%v", err)
		}
		if c, _ := f.store.ChargeByOutTradeNo(ctx, "T1"); c.State != ChargeProcessing {
			t.Fatalf("state changed to %s", c.State)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		f := chargeFixture(t)
		if _, err := f.svc.CloseCharge(ctx, "NOPE"); !errors.Is(err, ErrChargeNotFound) {
			t.Fatalf("%v", err)
		}
	})
}

func TestChargeValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field string
		edit  func(*ChargeInput)
	}{
		{"out_trade_no", func(in *ChargeInput) { in.OutTradeNo = "" }},
		{"out_trade_no", func(in *ChargeInput) { in.OutTradeNo = strings.Repeat("9", 33) }},
		{"contract_id", func(in *ChargeInput) { in.ContractID = "" }},
		{"amount.total", func(in *ChargeInput) { in.Amount.Total = 0 }},
		{"amount.total", func(in *ChargeInput) { in.Amount.Total = -5 }},
		{"amount.currency", func(in *ChargeInput) { in.Amount.Currency = "XYZ" }},
		{"description", func(in *ChargeInput) { in.Description = "" }},
		{"description", func(in *ChargeInput) { in.Description = strings.Repeat("d", 129) }},
		{"attach", func(in *ChargeInput) { in.Attach = strings.Repeat("a", 128) }},
		{"goods_tag", func(in *ChargeInput) { in.GoodsTag = "a b" }},
		{"merchant_category_code", func(in *ChargeInput) { in.MerchantCategoryCode = strings.Repeat("1", 17) }},
		{"scene_info.device_ip", func(in *ChargeInput) { in.SceneInfo.DeviceIP = "nope" }},
	} {
		f := chargeFixture(t)
		in := chargeIn("T1")
		tc.edit(&in)
		_, err := f.svc.CreateCharge(context.Background(), in)
		if e := AsError(err); e.Kind != KindInvalid || e.Violations[0].Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
		if len(f.wc.deductions) != 0 {
			t.Errorf("%s: invalid input reached WeChat", tc.field)
		}
	}
}
