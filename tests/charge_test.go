package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// configurePayer sets how the sandbox's user openid pays.
func (p *papayd) configurePayer(openid string, cfg map[string]any) {
	p.t.Helper()
	if code := p.do(http.MethodPost, "/sandbox/v1/payers/"+openid+":configure", cfg, nil); code != http.StatusOK {
		p.t.Fatalf("configure payer %s: HTTP %d", openid, code)
	}
}

func chargeReq(no, contractID string, total int64) *papayv1.CreateChargeRequest {
	return &papayv1.CreateChargeRequest{OutTradeNo: no, ContractId: contractID, Amount: &papayv1.Amount{Total: total, Currency: "HKD"},
		Description: "FitClub-Central-Monthly", Attach: "member=42"}
}

func createCharge(t *testing.T, p *papayd, req *papayv1.CreateChargeRequest) *papayv1.Charge {
	t.Helper()
	resp, err := p.charges.CreateCharge(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateCharge(%s): %v", req.GetOutTradeNo(), err)
	}
	return resp.GetCharge()
}

func getCharge(t *testing.T, p *papayd, no string, refresh bool) *papayv1.Charge {
	t.Helper()
	resp, err := p.charges.GetCharge(context.Background(), &papayv1.GetChargeRequest{OutTradeNo: no, Refresh: refresh})
	if err != nil {
		t.Fatalf("GetCharge(%s): %v", no, err)
	}
	return resp.GetCharge()
}

func waitCharge(t *testing.T, p *papayd, no string, state papayv1.ChargeState) *papayv1.Charge {
	t.Helper()
	var c *papayv1.Charge
	eventually(t, no+" "+state.String(), func() bool {
		c = getCharge(t, p, no, false)
		return c.GetState() == state
	})
	return c
}

// deductions is how many times the sandbox took money for out_trade_no.
func (p *papayd) deductions(outTradeNo string) int {
	p.t.Helper()
	o, ok := p.app.Sandbox().Order(outTradeNo)
	if !ok {
		return 0
	}
	return o.Deductions
}

// notificationsAbout returns the records about one out_trade_no.
func (p *papayd) notificationsAbout(outTradeNo string) []notification {
	var out []notification
	for _, n := range p.notifications() {
		if n.OutTradeNo == outTradeNo {
			out = append(out, n)
		}
	}
	return out
}

func TestChargeSucceedsWithNotification(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-ok")
	p.configurePayer("oPayer-ok", map[string]any{"behavior": "SUCCEED", "currency": "CNY", "exchange_rate": 90000000})

	c := createCharge(t, p, chargeReq("ORDER-0001", a.GetContractId(), 8800))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || c.GetTradeState() != "SUCCESS" || c.GetTransactionId() == "" ||
		c.GetPayerTotal() != 7920 || c.GetPayerCurrency() != "CNY" || c.GetExchangeRate().GetRate() != 90000000 || c.GetSuccessTime() == nil {
		t.Fatalf("charge = %v", c)
	}
	if c.GetOutContractCode() != a.GetOutContractCode() || c.GetOpenid() != "oPayer-ok" || c.GetMerchantCategoryCode() != "5999" || c.GetSubMchid() != a.GetSubMchid() {
		t.Fatalf("charge does not carry its agreement and defaults: %v", c)
	}
	// TRANSACTION.SUCCESS arrives, is verified and recorded, and agrees.
	eventually(t, "TRANSACTION.SUCCESS recorded", func() bool { return len(p.notificationsAbout("ORDER-0001")) == 1 })
	if n := p.notificationsAbout("ORDER-0001")[0]; n.EventType != "TRANSACTION.SUCCESS" || (n.Outcome != "NOOP" && n.Outcome != "APPLIED") {
		t.Fatalf("notification %+v", n)
	}
	final := getCharge(t, p, "ORDER-0001", false)
	if final.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || final.GetTransactionId() != c.GetTransactionId() {
		t.Fatalf("after the notification: %v", final)
	}
	byID, err := p.charges.GetCharge(context.Background(), &papayv1.GetChargeRequest{TransactionId: c.GetTransactionId()})
	if err != nil || byID.GetCharge().GetOutTradeNo() != "ORDER-0001" {
		t.Fatalf("by transaction id: %v %v", byID, err)
	}
	if n := p.deductions("ORDER-0001"); n != 1 {
		t.Fatalf("sandbox took money %d times", n)
	}
}

func TestChargeOverREST(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-rest")
	var resp struct {
		Charge json.RawMessage `json:"charge"`
	}
	code := p.do(http.MethodPost, "/v1/charges", map[string]any{
		"out_trade_no": "REST-ORDER-1", "contract_id": a.GetContractId(),
		"amount": map[string]any{"total": 1500, "currency": "HKD"}, "description": "Box-Monthly",
		"scene_info": map[string]any{"device_ip": "203.0.113.9"},
	}, &resp)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/charges: HTTP %d", code)
	}
	var c papayv1.Charge
	if err := protojson.Unmarshal(resp.Charge, &c); err != nil {
		t.Fatal(err)
	}
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || c.GetSceneInfo().GetDeviceIp() != "203.0.113.9" {
		t.Fatalf("charge %v", &c)
	}
	if code := p.do(http.MethodGet, "/v1/charges/REST-ORDER-1", nil, &resp); code != http.StatusOK {
		t.Fatalf("GET by out_trade_no: HTTP %d", code)
	}
	if code := p.do(http.MethodGet, "/v1/charges/transaction-id/"+c.GetTransactionId()+"?refresh=true", nil, &resp); code != http.StatusOK {
		t.Fatalf("GET by transaction id: HTTP %d", code)
	}
	var list struct {
		Charges []json.RawMessage `json:"charges"`
	}
	if code := p.do(http.MethodGet, "/v1/charges?contract_id="+a.GetContractId()+"&state=CHARGE_STATE_SUCCEEDED", nil, &list); code != http.StatusOK || len(list.Charges) != 1 {
		t.Fatalf("list: HTTP %d, %d charges", code, len(list.Charges))
	}
	var e restError
	if code := p.do(http.MethodPost, "/v1/charges/REST-ORDER-1:close", map[string]any{}, &e); code != http.StatusBadRequest || e.reason() != "ORDER_PAID" {
		t.Fatalf("close of a paid charge: HTTP %d %+v", code, e)
	}
}

func TestChargeInsufficientBalance(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-poor")
	p.configurePayer("oPayer-poor", map[string]any{"behavior": "INSUFFICIENT_BALANCE"})
	c := createCharge(t, p, chargeReq("ORDER-POOR", a.GetContractId(), 5000))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_FAILED || c.GetFailureCode() != "NOT_ENOUGH" || c.GetFailureMessage() == "" {
		t.Fatalf("refused charge = %v", c)
	}
	if n := p.deductions("ORDER-POOR"); n != 0 {
		t.Fatalf("money taken %d times on a refusal", n)
	}
	// A retry with the same number answers the refusal; no second call.
	before := len(p.wechatCalls())
	if again := createCharge(t, p, chargeReq("ORDER-POOR", a.GetContractId(), 5000)); again.GetState() != papayv1.ChargeState_CHARGE_STATE_FAILED {
		t.Fatalf("retry = %v", again)
	}
	if after := len(p.wechatCalls()); after != before {
		t.Fatalf("a final charge's retry called WeChat (%d -> %d calls)", before, after)
	}
}

func TestChargeUserPayingSettlesLater(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-slowbank")
	p.configurePayer("oPayer-slowbank", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 150})
	c := createCharge(t, p, chargeReq("ORDER-LATER", a.GetContractId(), 2500))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_PROCESSING || c.GetTradeState() != "USERPAYING" {
		t.Fatalf("charge = %v", c)
	}
	done := waitCharge(t, p, "ORDER-LATER", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	if done.GetSuccessTime() == nil || done.GetTradeState() != "SUCCESS" {
		t.Fatalf("settled charge = %v", done)
	}
	if n := p.notificationsAbout("ORDER-LATER"); len(n) != 1 || n[0].Outcome != "APPLIED" {
		t.Fatalf("notifications %+v", n)
	}
}

// A papayd whose notifications never arrive: outcomes are found by refresh.
func startDeaf(t *testing.T) *papayd {
	return startWith(t, "", map[string]string{
		"PAPAYD_NOTIFY_URL":        "http://127.0.0.1:1/wechatpay/notify",
		"PAPAYD_WECHATPAY_TIMEOUT": "300ms",
	})
}

// signedByRefresh signs an agreement whose PAPAY.SIGN is lost.
func signedByRefresh(t *testing.T, p *papayd, openid string) *papayv1.Agreement {
	t.Helper()
	pre := presign(t, p, openid)
	p.userSigns(pre.GetSessionId(), nil)
	r, err := p.agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{OutContractCode: pre.GetAgreement().GetOutContractCode(), PlanId: planID, Refresh: true})
	if err != nil || r.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
		t.Fatalf("refresh to SIGNED: %v %v", r, err)
	}
	return r.GetAgreement()
}

func TestChargeTimeoutLeavesPendingRefreshResolves(t *testing.T) {
	t.Parallel()
	p := startDeaf(t)
	a := signedByRefresh(t, p, "oPayer-timeout")
	p.configurePayer("oPayer-timeout", map[string]any{"behavior": "SLOW", "delay_ms": 1500})
	start := time.Now()
	c := createCharge(t, p, chargeReq("ORDER-SLOW", a.GetContractId(), 3000))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("timed-out charge = %v", c)
	}
	if d := time.Since(start); d > 1200*time.Millisecond {
		t.Fatalf("CreateCharge took %v despite a 300ms WeChat deadline", d)
	}
	// The caller must not invent a new number: the same one answers PENDING, and
	// refresh finds what WeChat did.
	r := getCharge(t, p, "ORDER-SLOW", true)
	if r.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || r.GetTransactionId() == "" {
		t.Fatalf("refreshed charge = %v", r)
	}
	if n := p.deductions("ORDER-SLOW"); n != 1 {
		t.Fatalf("money taken %d times", n)
	}
}

func TestCloseCharge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("unpaid", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		a := signed(t, p, "oPayer-close")
		p.configurePayer("oPayer-close", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 60000})
		createCharge(t, p, chargeReq("ORDER-CLOSE", a.GetContractId(), 100))
		resp, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: "ORDER-CLOSE"})
		if err != nil || resp.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_CLOSED {
			t.Fatalf("close: %v %v", resp, err)
		}
		if o, _ := p.app.Sandbox().Order("ORDER-CLOSE"); o.TradeState != "CLOSED" || o.Deductions != 0 {
			t.Fatalf("WeChat side after close: %+v", o)
		}
		// Closing again is harmless.
		if again, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: "ORDER-CLOSE"}); err != nil || again.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_CLOSED {
			t.Fatalf("second close: %v %v", again, err)
		}
	})
	t.Run("paid behind papayd's back", func(t *testing.T) {
		t.Parallel()
		p := startDeaf(t)
		a := signedByRefresh(t, p, "oPayer-paidlater")
		p.configurePayer("oPayer-paidlater", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 50})
		if c := createCharge(t, p, chargeReq("ORDER-PAID", a.GetContractId(), 100)); c.GetState() != papayv1.ChargeState_CHARGE_STATE_PROCESSING {
			t.Fatalf("charge = %v", c)
		}
		eventually(t, "settled at WeChat", func() bool { o, _ := p.app.Sandbox().Order("ORDER-PAID"); return o.TradeState == "SUCCESS" })
		_, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: "ORDER-PAID"})
		if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "ORDER_PAID" {
			t.Fatalf("close of a paid order: %v %q", code, reason)
		}
		if c := getCharge(t, p, "ORDER-PAID", false); c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
			t.Fatalf("paid order not refreshed: %v", c)
		}
	})
}

func TestChargeNeedsSignedAgreement(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	a := signed(t, p, "oPayer-term")
	if _, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err := p.charges.CreateCharge(ctx, chargeReq("ORDER-TERM", a.GetContractId(), 100))
	if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "AGREEMENT_NOT_SIGNED" {
		t.Fatalf("charge on a terminated agreement: %v %q", code, reason)
	}
	_, err = p.charges.CreateCharge(ctx, chargeReq("ORDER-NOPE", "NO-SUCH-CONTRACT", 100))
	if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "AGREEMENT_NOT_SIGNED" {
		t.Fatalf("charge on an unknown agreement: %v %q", code, reason)
	}
	if _, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "ORDER-TERM"}); err == nil {
		t.Fatal("a refused CreateCharge left a charge")
	}
	for _, no := range []string{"ORDER-TERM", "ORDER-NOPE"} {
		if n := p.deductions(no); n != 0 {
			t.Fatalf("%s reached WeChat", no)
		}
	}
}

func TestChargeIdempotencyAndConcurrency(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-idem")
	req := chargeReq("ORDER-IDEM", a.GetContractId(), 4200)
	var wg sync.WaitGroup
	got := make([]*papayv1.Charge, 10)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.charges.CreateCharge(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = resp.GetCharge()
		}()
	}
	wg.Wait()
	for _, c := range got[1:] {
		if c.GetTransactionId() != got[0].GetTransactionId() || c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
			t.Fatalf("callers disagree: %v vs %v", c, got[0])
		}
	}
	if n := p.deductions("ORDER-IDEM"); n != 1 {
		t.Fatalf("ten concurrent CreateCharge made %d deductions", n)
	}
	other := chargeReq("ORDER-IDEM", a.GetContractId(), 4201)
	_, err := p.charges.CreateCharge(context.Background(), other)
	if code, reason, _ := statusDetails(err); code != codes.AlreadyExists || reason != "OUT_TRADE_NO_REUSED" {
		t.Fatalf("reuse with another amount: %v %q", code, reason)
	}
}

func TestNotificationBeforeDeductionAnswer(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-race")
	p.configurePayer("oPayer-race", map[string]any{"behavior": "NOTIFY_FIRST"})
	c := createCharge(t, p, chargeReq("ORDER-RACE", a.GetContractId(), 700))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge = %v", c)
	}
	n := p.notificationsAbout("ORDER-RACE")
	if len(n) != 1 || n[0].Outcome != "APPLIED" {
		t.Fatalf("the notification should have arrived first and applied: %+v", n)
	}
	if diff := cmp.Diff(c, getCharge(t, p, "ORDER-RACE", false), protocmp.Transform()); diff != "" {
		t.Fatalf("answer and record differ:\n%s", diff)
	}
}

func TestTransactionNotificationMismatchAndDuplicates(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oPayer-anomaly")
	p.configurePayer("oPayer-anomaly", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 60000})
	before := createCharge(t, p, chargeReq("ORDER-ANOM", a.GetContractId(), 1000))
	o, ok := p.app.Sandbox().Order("ORDER-ANOM")
	if !ok {
		t.Fatal("no sandbox order")
	}
	res := o.Resource()
	res.TradeState, res.TradeStateDesc = "SUCCESS", "paid"
	res.Amount.Total = 1 // tampered: WeChat says 0.01 HKD was charged
	h, body, err := p.app.Sandbox().BuildNotification("TRANSACTION.SUCCESS", "EV-anomaly-1", res)
	if err != nil {
		t.Fatal(err)
	}
	if status, ack := p.postNotification(h, body); status != 200 || ack["code"] != "SUCCESS" {
		t.Fatalf("mismatching notification: HTTP %d %v (it is stored, so acknowledged)", status, ack)
	}
	if diff := cmp.Diff(before, getCharge(t, p, "ORDER-ANOM", false), protocmp.Transform()); diff != "" {
		t.Fatalf("a mismatching notification changed the charge:\n%s", diff)
	}
	if n := p.notificationsAbout("ORDER-ANOM"); len(n) != 1 || n[0].Outcome != "ANOMALY" {
		t.Fatalf("records %+v", n)
	}
	if !strings.Contains(p.log.String(), "ANOMALY") {
		t.Fatal("the anomaly was not logged")
	}

	res.Amount.Total = 1000
	h, body, err = p.app.Sandbox().BuildNotification("TRANSACTION.SUCCESS", "EV-good-1", res)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, _ := p.postNotification(h, body); status != 200 {
			t.Fatalf("HTTP %d", status)
		}
	}
	got := p.notificationsAbout("ORDER-ANOM")
	if len(got) != 2 || got[1].ID != "EV-good-1" || got[1].Outcome != "APPLIED" {
		t.Fatalf("records %+v", got)
	}
	if c := getCharge(t, p, "ORDER-ANOM", false); c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("after the good notification: %v", c)
	}
}

// TestChargeOnContractEndedInsideWeChat: the user ended the contract in
// WeChat and the PAPAY.TERMINATE was lost, so papayd still says SIGNED.
// WeChat refuses the deduction (NO_AUTH); the charge is FAILED with that
// code and papayd learns the termination.
func TestChargeOnContractEndedInsideWeChat(t *testing.T) {
	t.Parallel()
	p := startDeaf(t)
	a := signedByRefresh(t, p, "oPayer-gone")
	if _, err := p.app.Sandbox().UserTerminate(a.GetContractId()); err != nil {
		t.Fatal(err)
	}
	c := createCharge(t, p, chargeReq("ORDER-GONE", a.GetContractId(), 100))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_FAILED || c.GetFailureCode() != "NO_AUTH" {
		t.Fatalf("charge = %v", c)
	}
	if got := getByCode(t, p, a.GetOutContractCode()); got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED ||
		got.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER {
		t.Fatalf("agreement after the refusal = %v", got)
	}
	_, err := p.charges.CreateCharge(context.Background(), chargeReq("ORDER-GONE-2", a.GetContractId(), 100))
	if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "AGREEMENT_NOT_SIGNED" {
		t.Fatalf("next charge: %v %q", code, reason)
	}
}
