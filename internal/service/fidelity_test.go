package service

import (
	"context"
	"testing"
	"time"
)

// TestCloseClearsTheTradeStateDesc: a charge WeChat reported USERPAYING
// ("用户支付中") and papayd then closed does not keep that description
// beside CLOSED.
func TestCloseClearsTheTradeStateDesc(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X1", TradeState: TradeUserPaying,
			TradeStateDesc: "用户支付中", Amount: req.Amount}, nil
	}
	if c := f.charge(t, chargeIn("T1")); c.TradeStateDesc != "用户支付中" {
		t.Fatalf("paying charge: trade_state_desc %q", c.TradeStateDesc)
	}
	c, err := f.svc.CloseCharge(ctx, "T1")
	if err != nil || c.State != ChargeClosed || c.TradeState != TradeClosed {
		t.Fatalf("close: %+v %v", c, err)
	}
	stored, _ := f.store.ChargeByOutTradeNo(ctx, "T1")
	for _, got := range []Charge{c, stored} {
		if got.TradeStateDesc != "" {
			t.Errorf("CLOSED charge keeps trade_state_desc %q", got.TradeStateDesc)
		}
	}
}

// TestApplySetsTheDescWithTheState: WeChat's trade_state_desc is replaced
// whenever it reports a trade_state, by "" when it gives none.
func TestApplySetsTheDescWithTheState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rt       RemoteTransaction
		wantDesc string
	}{
		{RemoteTransaction{TradeState: TradeClosed}, ""},
		{RemoteTransaction{TradeState: TradeClosed, TradeStateDesc: "已关闭"}, "已关闭"},
		{RemoteTransaction{TradeState: TradeSuccess}, ""},
		{RemoteTransaction{}, "用户支付中"}, // no trade state: nothing learned
	} {
		c := Charge{State: ChargeProcessing, TradeState: TradeUserPaying, TradeStateDesc: "用户支付中", Amount: hkd(1000)}
		tc.rt.Amount = hkd(1000)
		c.apply(tc.rt)
		if c.TradeStateDesc != tc.wantDesc {
			t.Errorf("after %s/%q: trade_state_desc %q, want %q", tc.rt.TradeState, tc.rt.TradeStateDesc, c.TradeStateDesc, tc.wantDesc)
		}
	}
}

// TestWeChatTimesAreWholeSeconds: terminated_time and signed_time have
// WeChat's precision (whole seconds) whether WeChat's notification gave
// them or papayd recorded its own clock in their place.
func TestWeChatTimesAreWholeSeconds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const frac = 123456789 * time.Nanosecond
	wechatOperateTime := t0.Add(time.Second) // whole seconds, as WeChat sends
	for _, notificationFirst := range []bool{true, false} {
		f := newFixture()
		f.clock.advance(frac)
		f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
		// A PAPAY.SIGN without operate_time: papayd's clock stands in.
		if o, err := f.svc.HandleNotification(ctx, Notification{ID: "S1", EventType: EventContractSigned,
			Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, OpenID: "oU"}}); err != nil || o != OutcomeApplied {
			t.Fatalf("sign: %v %v", o, err)
		}
		if notificationFirst {
			f.wc.termHook = func() {
				if _, err := f.svc.HandleNotification(ctx, Notification{ID: "T1", EventType: EventContractTerminated,
					Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7,
						TerminationMode: TerminatedByMerchant, OperateTime: wechatOperateTime}}); err != nil {
					t.Errorf("terminate notification: %v", err)
				}
			}
		}
		a, err := f.svc.TerminateAgreement(ctx, "W1", "bye")
		if err != nil {
			t.Fatal(err)
		}
		for what, at := range map[string]time.Time{"signed_time": a.SignedTime, "terminated_time": a.TerminatedTime} {
			if at.IsZero() || at.Nanosecond() != 0 {
				t.Errorf("notification first %v: %s %s is not whole seconds", notificationFirst, what, at.Format(time.RFC3339Nano))
			}
		}
		want := t0 // papayd's clock, truncated
		if notificationFirst {
			want = wechatOperateTime
		}
		if !a.TerminatedTime.Equal(want) {
			t.Errorf("notification first %v: terminated_time %s, want %s", notificationFirst, a.TerminatedTime, want)
		}
	}

	// A refresh that finds the contract TERMINATED without terminated_time.
	f := newFixture()
	f.clock.advance(frac)
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	f.wc.contract = RemoteContract{ContractID: "W1", OutContractCode: "C1", PlanID: 7, OpenID: "oU", State: "TERMINATED",
		TerminationMode: TerminatedByPlatform}
	a, err := f.svc.GetAgreement(ctx, AgreementKey{OutContractCode: "C1", PlanID: 7}, true)
	if err != nil || a.State != AgreementTerminated || a.TerminatedTime.Nanosecond() != 0 {
		t.Fatalf("refresh: %+v %v", a, err)
	}
}
