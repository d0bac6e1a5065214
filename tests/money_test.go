package tests

import (
	"context"
	"testing"
	"time"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// The money invariants: corner cases in which papayd once told a merchant
// something false about money. Each test failed on the code before the fix.

// TestPendingChargeRetriedAfterNotifyURLChange: WeChat deducted, but every
// answer and the notification were lost, so the charge is PENDING. papayd
// restarts with another PAPAYD_NOTIFY_URL and the merchant retries with the
// same out_trade_no. The retry must resend exactly what was sent before (a
// changed notify_url made WeChat answer OUT_TRADE_NO_USED, which papayd
// recorded FAILED: a paid charge reported failed, and a merchant would then
// charge again under a new number).
func TestPendingChargeRetriedAfterNotifyURLChange(t *testing.T) {
	t.Parallel()
	sb, env := liveSimulator(t, "500ms")
	env["PAPAYD_MERCHANT_CATEGORY_CODE"] = "5999"
	env["PAPAYD_RECONCILE_INTERVAL"], env["PAPAYD_RECONCILE_FIRST_CHECK"] = "1h", "1h" // the retry alone must get it right
	dir := env["PAPAYD_DATA_DIR"]

	p := startWith(t, dir, env)
	pre := presign(t, p, "oNotifyURL")
	c, err := sb.SignSession(pre.GetSessionId(), sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultLoseResponse, Method: "POST", Path: deductPath, Count: 1000},
		sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "TRANSACTION.SUCCESS", Count: 1000})
	req := chargeReq("ORDER-NEWURL", c.ContractID, 2500)
	if got := createCharge(t, p, req); got.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("charge with every answer lost: %v", got)
	}
	if o, _ := sb.Order("ORDER-NEWURL"); o.TradeState != "SUCCESS" || o.Deductions != 1 {
		t.Fatalf("WeChat's order: %+v", o)
	}
	p.stop()
	sb.ClearFaults()

	firstURL := env["PAPAYD_NOTIFY_URL"]
	env["PAPAYD_NOTIFY_URL"] = firstURL + "-moved"
	q := startWith(t, dir, env)
	got := createCharge(t, q, req)
	if got.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || got.GetTransactionId() == "" {
		t.Fatalf("retry after the restart: %v, want SUCCEEDED", got)
	}
	if o, _ := sb.Order("ORDER-NEWURL"); o.Deductions != 1 || o.NotifyURL != firstURL {
		t.Fatalf("WeChat's order after the retry: %d deductions, notify_url %q", o.Deductions, o.NotifyURL)
	}
}

// TestCloseRacingSlowDeduction: the deduction is slow (1s) and papayd's
// WeChat deadline 300ms, and TRANSACTION.SUCCESS is dropped. CloseCharge's
// reverse finds no order (the deduction has not executed yet). The charge
// must not be CLOSED then: WeChat deducts a moment later, and papayd must
// end up SUCCEEDED (it said CLOSED forever).
func TestCloseRacingSlowDeduction(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{
		"PAPAYD_WECHATPAY_TIMEOUT": "300ms", "PAPAYD_CHARGE_IN_FLIGHT": "3s",
		"PAPAYD_RECONCILE_INTERVAL": "50ms", "PAPAYD_RECONCILE_FIRST_CHECK": "200ms", "PAPAYD_RECONCILE_TIME_SCALE": "0.001",
	})
	sb := p.app.Sandbox()
	a := signed(t, p, "oSlowClose")
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultLatency, Method: "POST", Path: deductPath, Count: 1000, DelayMS: 1000},
		sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "TRANSACTION.SUCCESS", Count: 1000})
	req := chargeReq("ORDER-RACE", a.GetContractId(), 1200)
	if c := createCharge(t, p, req); c.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("slow charge: %v, want PENDING", c)
	}
	resp, err := p.charges.CloseCharge(context.Background(), &papayv1.CloseChargeRequest{OutTradeNo: "ORDER-RACE"})
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	if st := resp.GetCharge().GetState(); st == papayv1.ChargeState_CHARGE_STATE_CLOSED {
		t.Fatalf("close of an order WeChat does not know yet answered CLOSED: a deduction is still in flight")
	}
	eventually(t, "the slow deduction executed", func() bool { o, _ := sb.Order("ORDER-RACE"); return o.TradeState == "SUCCESS" })
	waitCharge(t, p, "ORDER-RACE", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	if c := createCharge(t, p, req); c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("retry answers %v while WeChat took the money", c.GetState())
	}
	if n := p.deductions("ORDER-RACE"); n != 1 {
		t.Fatalf("%d deductions", n)
	}
}

// TestCloseOfNeverReceivedChargeEndsClosed: every deduction attempt is
// dropped before WeChat executes it. A close finds no order, the charge is
// CLOSING, and once no deduction can be in flight it is CLOSED; nothing was
// ever deducted.
func TestCloseOfNeverReceivedChargeEndsClosed(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{
		"PAPAYD_WECHATPAY_TIMEOUT": "300ms", "PAPAYD_CHARGE_IN_FLIGHT": "3s", // long enough for the close to come first on a loaded machine
		"PAPAYD_RECONCILE_INTERVAL": "50ms", "PAPAYD_RECONCILE_FIRST_CHECK": "200ms", "PAPAYD_RECONCILE_TIME_SCALE": "0.001",
	})
	sb := p.app.Sandbox()
	a := signed(t, p, "oNeverSent")
	withFaults(t, sb, sandbox.FaultRule{Kind: sandbox.FaultDropConnection, Method: "POST", Path: deductPath, Count: 1000})
	start := time.Now() // the deduction is sent after this: its in-flight window ends 3s after at least
	if c := createCharge(t, p, chargeReq("ORDER-LOST", a.GetContractId(), 700)); c.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("charge: %v, want PENDING", c)
	}
	resp, err := p.charges.CloseCharge(context.Background(), &papayv1.CloseChargeRequest{OutTradeNo: "ORDER-LOST"})
	if err != nil || resp.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_CLOSING {
		t.Fatalf("close: %v %v, want CLOSING", resp, err)
	}
	waitCharge(t, p, "ORDER-LOST", papayv1.ChargeState_CHARGE_STATE_CLOSED)
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("CLOSED after %v, before the in-flight window ended", d)
	}
	if _, ok := sb.Order("ORDER-LOST"); ok {
		t.Fatal("WeChat has an order that was never sent")
	}
}
