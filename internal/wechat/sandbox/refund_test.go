package sandbox_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestRefundSucceeds(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	tx := e.paidOrder(t, "CR100", "oRefund100", "TR100", sandbox.PayerConfig{})

	body := e.refundBody("TR100", "R100", 2500, recv.URL)
	body["out_trade_no"], body["transaction_id"] = "", tx.TransactionID // by transaction id, as WeChat advises
	a := e.mustRefund(t, body)
	r := e.ledgerRefund(t, "R100")
	if len(a.ID) != 29 || strings.Trim(a.ID, "0123456789") != "" || a.ID != r.RefundID || a.OutRefundNo != "R100" {
		t.Errorf("answer %+v, ledger refund id %q", a.RefundCreated, r.RefundID)
	}
	if _, ok := a.raw["status"]; ok {
		t.Errorf("the refund answer carries a status (it means accepted only): %v", a.raw)
	}
	wantAmount := sandbox.RefundCreatedAmount{Refund: 2500, Currency: "HKD", PayerRefund: 2500, PayerCurrency: "HKD",
		ExchangeRate: &sandbox.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000}}
	if diff := cmp.Diff(wantAmount, a.Amount); diff != "" || !strings.HasSuffix(a.CreateTime, "+08:00") {
		t.Errorf("answer amount (-want +got):\n%s\ncreate_time %q", diff, a.CreateTime)
	}

	for _, path := range []string{"/id/" + a.ID, "/out-refund-no/R100"} {
		q := e.mustQueryRefund(t, path)
		want := sandbox.RefundQueried{ID: a.ID, OutRefundNo: "R100", TransactionID: tx.TransactionID, OutTradeNo: "TR100",
			Channel: "ORIGINAL", RecvAccount: sandbox.RefundRecvAccount, FundSource: sandbox.RefundFundsUnsettled,
			SuccessTime: q.SuccessTime, CreateTime: a.CreateTime, Status: sandbox.RefundSuccess,
			Amount: sandbox.RefundAmount{Refund: 2500, Total: 10000, Currency: "HKD", PayerRefund: 2500, PayerTotal: 10000,
				PayerCurrency: "HKD", ExchangeRate: &sandbox.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000}}}
		if diff := cmp.Diff(want, q); diff != "" || q.SuccessTime == "" {
			t.Errorf("query %s (-want +got):\n%s", path, diff)
		}
	}

	content := refundNotice(t, recv, sandbox.EventRefundSuccess)
	want := map[string]any{"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "transaction_id": tx.TransactionID,
		"out_trade_no": "TR100", "refund_id": a.ID, "out_refund_no": "R100", "refund_status": "SUCCESS",
		"success_time": content["success_time"], "user_received_account": sandbox.RefundRecvAccount,
		"amount": map[string]any{"total": 10000.0, "currency": "HKD", "refund": 2500.0, "payer_total": 10000.0,
			"payer_refund": 2500.0, "payer_currency": "HKD", "exchange_rate": map[string]any{"type": "SETTLEMENT_RATE", "rate": 1e8}}}
	if diff := cmp.Diff(want, content); diff != "" || content["success_time"] == "" {
		t.Errorf("REFUND.SUCCESS resource (-want +got):\n%s", diff)
	}

	// After a refund WeChat reports the order as REFUND.
	if got := e.queryByNo(t, "TR100"); got.TradeState != sandbox.TradeRefund || got.TradeStateDesc != "转入退款" ||
		got.Amount.PayerTotal != 10000 {
		t.Errorf("order after the refund: %s %q payer_total %d", got.TradeState, got.TradeStateDesc, got.Amount.PayerTotal)
	}
	if r.Applied != 1 || r.Requests != 1 || r.Status != sandbox.RefundSuccess || r.Behavior != sandbox.RefundBehaviorSucceed ||
		r.SuccessTime.IsZero() || r.SPMchID != e.creds.MchID {
		t.Errorf("ledger %+v", r)
	}
	if o := e.order(t, "TR100"); o.Refunds != 1 || o.Refunded != 2500 || o.Deductions != 1 {
		t.Errorf("order ledger %+v", o)
	}
}

func TestRefundBehaviors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		behavior sandbox.RefundBehavior
		first    sandbox.RefundStatus // the status right after the answer
		final    sandbox.RefundStatus
		event    string
		refunded int64 // what the refund takes off the order in the end
	}{
		{sandbox.RefundBehaviorSucceed, sandbox.RefundSuccess, sandbox.RefundSuccess, sandbox.EventRefundSuccess, 4000},
		{sandbox.RefundBehaviorProcessing, sandbox.RefundProcessing, sandbox.RefundSuccess, sandbox.EventRefundSuccess, 4000},
		{sandbox.RefundBehaviorAbnormal, sandbox.RefundAbnormal, sandbox.RefundAbnormal, sandbox.EventRefundAbnormal, 4000},
		{sandbox.RefundBehaviorClosed, sandbox.RefundClosed, sandbox.RefundClosed, sandbox.EventRefundClosed, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.behavior), func(t *testing.T) {
			t.Parallel()
			creds := testCredentials(t)
			recv := newReceiver(t, creds, certVerifier(creds))
			e := newEnv(t, sandbox.Options{})
			cfg := sandbox.PayerConfig{RefundBehavior: tt.behavior}
			if tt.behavior == sandbox.RefundBehaviorProcessing {
				cfg.RefundSettleAfterMS = 300
			}
			e.paidOrder(t, "CB", "oBehavior", "TB", cfg)
			a := e.mustRefund(t, e.refundBody("TB", "RB", 4000, recv.URL))
			if q := e.mustQueryRefund(t, "/id/"+a.ID); q.Status != tt.first {
				t.Errorf("status right after the answer %s, want %s", q.Status, tt.first)
			}
			content := refundNotice(t, recv, tt.event)
			if content["refund_status"] != string(tt.final) || content["out_refund_no"] != "RB" || content["refund_id"] != a.ID {
				t.Errorf("%s resource %v", tt.event, content)
			}
			if _, has := content["success_time"]; has != (tt.final == sandbox.RefundSuccess) {
				t.Errorf("success_time %v with status %s", content["success_time"], tt.final)
			}
			if q := e.mustQueryRefund(t, "/out-refund-no/RB"); q.Status != tt.final {
				t.Errorf("final status %s, want %s", q.Status, tt.final)
			}
			if o := e.order(t, "TB"); o.Refunded != tt.refunded || o.Refunds != 1 {
				t.Errorf("order refunded %d in %d refunds, want %d in 1", o.Refunded, o.Refunds, tt.refunded)
			}
			if r := e.ledgerRefund(t, "RB"); r.Applied != 1 || r.Behavior != tt.behavior {
				t.Errorf("ledger %+v", r)
			}
		})
	}
}

// TestRefundProcessingSettlesLater: a PROCESSING refund stays so for
// refund_settle_after_ms (real time), counts for WaitIdle, then succeeds.
func TestRefundProcessingSettlesLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CP", "oProcessing", "TP", sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorProcessing,
		RefundSettleAfterMS: 150})
	start := time.Now()
	e.mustRefund(t, e.refundBody("TP", "RP", 100, e.sinkURL))
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("idle after %v, before the settlement", d)
	}
	if r := e.ledgerRefund(t, "RP"); r.Status != sandbox.RefundSuccess || r.SuccessTime.IsZero() {
		t.Errorf("after the settlement: %+v", r)
	}
}

func TestRefundAbnormalResolved(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CA", "oAbnormal", "TA", sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorAbnormal})
	e.mustRefund(t, e.refundBody("TA", "RA1", 1000, recv.URL))
	refundNotice(t, recv, sandbox.EventRefundAbnormal)
	e.mustRefund(t, e.refundBody("TA", "RA2", 2000, recv.URL))
	refundNotice(t, recv, sandbox.EventRefundAbnormal)

	// Through the control API: the staff resolve the first to SUCCESS ...
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/refunds/RA1:resolve", map[string]any{"status": "SUCCESS"})
	if status != http.StatusOK || out["status"] != "SUCCESS" {
		t.Fatalf("resolve: %d %v", status, out)
	}
	if c := refundNotice(t, recv, sandbox.EventRefundSuccess); c["out_refund_no"] != "RA1" || c["refund_status"] != "SUCCESS" {
		t.Errorf("after resolving: %v", c)
	}
	// ... and the second to CLOSED (in Go): its amount is free again.
	if r, err := e.sb.ResolveRefund("", "RA2", sandbox.RefundClosed); err != nil || r.Status != sandbox.RefundClosed {
		t.Fatalf("ResolveRefund: %+v, %v", r, err)
	}
	if c := refundNotice(t, recv, sandbox.EventRefundClosed); c["out_refund_no"] != "RA2" {
		t.Errorf("after closing: %v", c)
	}
	if o := e.order(t, "TA"); o.Refunded != 1000 {
		t.Errorf("refunded %d, want 1000", o.Refunded)
	}
	for _, tc := range []struct {
		path   string
		body   map[string]any
		status int
		code   string
	}{
		{"/sandbox/v1/refunds/RA1:resolve", map[string]any{"status": "CLOSED"}, http.StatusConflict, "REFUND_NOT_ABNORMAL"},
		{"/sandbox/v1/refunds/NOPE:resolve", map[string]any{"status": "CLOSED"}, http.StatusNotFound, "NOT_FOUND"},
		{"/sandbox/v1/refunds/RA1:resolve", map[string]any{"status": "PROCESSING"}, http.StatusBadRequest, "INVALID_ARGUMENT"},
		{"/sandbox/v1/refunds/RA1:resolve", map[string]any{"statuz": "SUCCESS"}, http.StatusBadRequest, "INVALID_ARGUMENT"},
		{"/sandbox/v1/refunds/RA1:close", nil, http.StatusNotFound, "NOT_FOUND"},
	} {
		if status, out := e.control(t, http.MethodPost, tc.path, tc.body); status != tc.status || out["code"] != tc.code {
			t.Errorf("POST %s %v: %d %v, want %d %s", tc.path, tc.body, status, out, tc.status, tc.code)
		}
	}
}

// TestRefundNotEnough: the first N requests of each out_refund_no are refused with
// NOT_ENOUGH and leave no trace; the same number then succeeds, once.
func TestRefundNotEnough(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CN", "oNotEnough", "TN", sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorNotEnough,
		RefundNotEnoughAttempts: 2})
	body := e.refundBody("TN", "RN", 500, e.sinkURL)
	for i := range 2 {
		_, err := e.refund(t, body)
		apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
		if _, ok := e.sb.Refund("", "RN"); ok || len(e.sb.Refunds()) != 0 {
			t.Fatalf("refusal %d recorded a refund", i+1)
		}
		if _, err := e.queryRefund(t, "/out-refund-no/RN"); err == nil {
			t.Fatalf("refusal %d: the refund can be queried", i+1)
		}
	}
	a := e.mustRefund(t, body)
	if again := e.mustRefund(t, body); again.ID != a.ID {
		t.Errorf("a replay answered refund %s, want %s", again.ID, a.ID)
	}
	r := e.ledgerRefund(t, "RN")
	if r.NotEnoughRefusals != 2 || r.Applied != 1 || r.Requests != 2 || r.Status != sandbox.RefundSuccess {
		t.Errorf("ledger %+v", r)
	}
	// Another number of the same payer is refused its own 2 times.
	_, err := e.refundSpaced(t, e.refundBody("TN", "RN2", 500, e.sinkURL))
	apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
}

// TestRefundIsIdempotent: concurrent identical requests refund once; the same number
// with other parameters is OUT_REFUND_NO_USED.
func TestRefundIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	tx := e.paidOrder(t, "CI", "oIdem", "TI", sandbox.PayerConfig{})
	body := e.refundBody("TI", "RI", 3000, e.sinkURL)
	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			a, err := e.refund(t, body)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("refund ids %v, want one", ids)
		}
	}
	r := e.ledgerRefund(t, "RI")
	if r.Applied != 1 || r.Requests != 10 || len(e.sb.Refunds()) != 1 {
		t.Errorf("ledger %+v, %d refunds", r, len(e.sb.Refunds()))
	}
	if o := e.order(t, "TI"); o.Refunded != 3000 || o.Refunds != 1 {
		t.Errorf("order %+v", o)
	}
	// The same refund named by its transaction id is the same parameters.
	byID := e.refundBody("TI", "RI", 3000, e.sinkURL)
	delete(byID, "out_trade_no")
	byID["transaction_id"] = tx.TransactionID
	if a := e.mustRefund(t, byID); a.ID != ids[0] {
		t.Errorf("by transaction id: refund %s, want %s", a.ID, ids[0])
	}
	for name, edit := range map[string]func(map[string]any){
		"amount":     func(b map[string]any) { b["amount"].(map[string]any)["refund"] = 3001 },
		"reason":     func(b map[string]any) { b["reason"] = "other" },
		"notify_url": func(b map[string]any) { b["notify_url"] = "https://example.com/other" },
		"order":      func(b map[string]any) { b["out_trade_no"] = "OTHER" },
	} {
		b := e.refundBody("TI", "RI", 3000, e.sinkURL)
		edit(b)
		_, err := e.refund(t, b)
		if err == nil {
			t.Errorf("%s: the same number with another %s was accepted", name, name)
			continue
		}
		apiError(t, err, http.StatusBadRequest, sandbox.CodeOutRefundNoUsed)
	}
	if r := e.ledgerRefund(t, "RI"); r.Applied != 1 || len(e.sb.Refunds()) != 1 {
		t.Errorf("after the refusals: %+v", r)
	}
}

// TestRefundRefusals: what WeChat refuses, refused before anything is recorded.
func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CX", "oRefusals", "TX", sandbox.PayerConfig{})
	poor := e.signedContract(t, "CXP", "oPoor", e.sinkURL)
	e.configure(t, "oPoor", sandbox.PayerConfig{Behavior: sandbox.BehaviorInsufficientBalance})
	_, err := e.deduct(t, e.deductBody(poor.ContractID, "TXUNPAID", e.sinkURL))
	apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
	e.mustRefund(t, e.refundBody("TX", "RX0", 6000, e.sinkURL))

	with := func(edit func(map[string]any)) map[string]any {
		b := e.refundBody("TX", "RX1", 1000, e.sinkURL)
		edit(b)
		return b
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
		field  string
	}{
		{"unknown order", with(func(b map[string]any) { b["out_trade_no"] = "NOPE" }), 404, sandbox.CodeResourceNotExists, ""},
		{"unknown transaction id", with(func(b map[string]any) { b["transaction_id"] = "4200000000000000000000000000" }), 404, sandbox.CodeResourceNotExists, ""},
		{"unpaid order", with(func(b map[string]any) { b["out_trade_no"] = "TXUNPAID" }), 400, sandbox.CodeInvalidRequest, ""},
		{"other total", with(func(b map[string]any) { b["amount"].(map[string]any)["total"] = 9999 }), 400, sandbox.CodeParamError, "/amount/total"},
		{"other currency", with(func(b map[string]any) { b["amount"].(map[string]any)["currency"] = "USD" }), 400, sandbox.CodeParamError, "/amount/currency"},
		{"exceeds the order", with(func(b map[string]any) { b["amount"].(map[string]any)["refund"] = 4001 }), 400, sandbox.CodeInvalidRequest, ""},
		{"refund above total", with(func(b map[string]any) { b["amount"].(map[string]any)["refund"] = 10001 }), 400, sandbox.CodeInvalidRequest, ""},
		{"refund near max int64", with(func(b map[string]any) { b["amount"].(map[string]any)["refund"] = int64(1<<63 - 1) }), 400, sandbox.CodeInvalidRequest, ""},
		{"other provider", with(func(b map[string]any) { b["sp_mchid"] = "1230000109" }), 403, sandbox.CodeNoAuth, ""},
		{"other sub-merchant", with(func(b map[string]any) { b["sub_mchid"] = "1230000999" }), 403, sandbox.CodeNoAuth, ""},
		{"no order", with(func(b map[string]any) { delete(b, "out_trade_no") }), 400, sandbox.CodeParamError, "/out_trade_no"},
		{"no out_refund_no", with(func(b map[string]any) { delete(b, "out_refund_no") }), 400, sandbox.CodeParamError, "/out_refund_no"},
		{"bad out_refund_no", with(func(b map[string]any) { b["out_refund_no"] = "R 1" }), 400, sandbox.CodeParamError, "/out_refund_no"},
		{"long out_refund_no", with(func(b map[string]any) { b["out_refund_no"] = strings.Repeat("R", 65) }), 400, sandbox.CodeParamError, "/out_refund_no"},
		{"long reason", with(func(b map[string]any) { b["reason"] = strings.Repeat("r", 81) }), 400, sandbox.CodeParamError, "/reason"},
		{"no amount", with(func(b map[string]any) { delete(b, "amount") }), 400, sandbox.CodeParamError, "/amount"},
		{"zero refund", with(func(b map[string]any) { b["amount"].(map[string]any)["refund"] = 0 }), 400, sandbox.CodeParamError, "/amount/refund"},
		{"string refund", with(func(b map[string]any) { b["amount"].(map[string]any)["refund"] = "10" }), 400, sandbox.CodeParamError, "/amount/refund"},
		{"notify_url with a query", with(func(b map[string]any) { b["notify_url"] = "https://example.com/n?a=1" }), 400, sandbox.CodeParamError, "/notify_url"},
	}
	for _, tt := range tests {
		_, err := e.refund(t, tt.body)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		apiErr := apiError(t, err, tt.status, tt.code)
		if tt.field != "" {
			if d, _ := apiErr.Detail.(map[string]any); d == nil || d["field"] != tt.field {
				t.Errorf("%s: detail %v, want field %s", tt.name, apiErr.Detail, tt.field)
			}
		}
	}
	if n := len(e.sb.Refunds()); n != 1 {
		t.Errorf("%d refunds recorded, want 1", n)
	}
	// What is left can be refunded, to the last cent, and not one more.
	e.mustRefund(t, e.refundBody("TX", "RX2", 4000, e.sinkURL))
	_, err = e.refund(t, e.refundBody("TX", "RX3", 1, e.sinkURL))
	apiError(t, err, http.StatusBadRequest, sandbox.CodeInvalidRequest)
}

// TestRefundSpacing: refunds of one order less than a minute (× TimeScale) apart are
// FREQUENCY_LIMITED; other orders are not held back; a replay is not a new refund.
func TestRefundSpacing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{TimeScale: 1}) // the real minute
	e.paidOrder(t, "CS1", "oSpacing1", "TS1", sandbox.PayerConfig{})
	e.paidOrder(t, "CS2", "oSpacing2", "TS2", sandbox.PayerConfig{})
	first := e.refundBody("TS1", "RS1", 100, e.sinkURL)
	if _, err := e.refund(t, first); err != nil {
		t.Fatal(err)
	}
	_, err := e.refund(t, e.refundBody("TS1", "RS2", 100, e.sinkURL))
	apiError(t, err, http.StatusTooManyRequests, sandbox.CodeFrequencyLimited)
	if _, err := e.refund(t, first); err != nil {
		t.Errorf("a replay within the minute: %v", err)
	}
	if _, err := e.refund(t, e.refundBody("TS2", "RS3", 100, e.sinkURL)); err != nil {
		t.Errorf("another order within the minute: %v", err)
	}
	if n := len(e.sb.Refunds()); n != 2 {
		t.Errorf("%d refunds, want 2", n)
	}
}

// TestRefundSpacingScaled: with TimeScale 0.0001 the minute is 6 ms.
func TestRefundSpacingScaled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{TimeScale: 0.001}) // 60 ms
	e.paidOrder(t, "CSS", "oScaled", "TSS", sandbox.PayerConfig{})
	e.mustRefund(t, e.refundBody("TSS", "RSS1", 100, e.sinkURL))
	_, err := e.refund(t, e.refundBody("TSS", "RSS2", 100, e.sinkURL))
	apiError(t, err, http.StatusTooManyRequests, sandbox.CodeFrequencyLimited)
	time.Sleep(70 * time.Millisecond)
	if _, err := e.refund(t, e.refundBody("TSS", "RSS2", 100, e.sinkURL)); err != nil {
		t.Errorf("after the scaled minute: %v", err)
	}
}

func TestRefundLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CL", "oLimits", "TL", sandbox.PayerConfig{})
	for i := range sandbox.MaxRefundsPerOrder {
		e.mustRefund(t, e.refundBody("TL", "RL"+string(rune('A'+i/26))+string(rune('a'+i%26)), 1, e.sinkURL))
	}
	time.Sleep(time.Millisecond)
	_, err := e.refund(t, e.refundBody("TL", "RL51", 1, e.sinkURL))
	apiError(t, err, http.StatusBadRequest, sandbox.CodeInvalidRequest)
	if o := e.order(t, "TL"); o.Refunds != sandbox.MaxRefundsPerOrder || o.Refunded != sandbox.MaxRefundsPerOrder {
		t.Errorf("order %+v", o)
	}
}

// TestRefundCrossBorder: payer_refund is the refund at the order's exchange rate,
// rounded like payer_total; the refund that completes the order returns exactly the rest.
func TestRefundCrossBorder(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	tx := e.paidOrder(t, "CC", "oCNY", "TC", sandbox.PayerConfig{Currency: "CNY", ExchangeRate: 87650000, Balance: ptr[int64](9000)})
	if tx.Amount.PayerTotal != 8765 {
		t.Fatalf("payer_total %d", tx.Amount.PayerTotal)
	}
	a := e.mustRefund(t, e.refundBody("TC", "RC1", 2500, recv.URL))
	want := sandbox.RefundCreatedAmount{Refund: 2500, Currency: "HKD", PayerRefund: sandbox.ConvertAmount(2500, 87650000),
		PayerCurrency: "CNY", ExchangeRate: &sandbox.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 87650000}}
	if diff := cmp.Diff(want, a.Amount); diff != "" || want.PayerRefund != 2191 {
		t.Errorf("amount (-want +got):\n%s", diff)
	}
	c := refundNotice(t, recv, sandbox.EventRefundSuccess)
	if amt := c["amount"].(map[string]any); amt["payer_refund"] != 2191.0 || amt["payer_total"] != 8765.0 || amt["payer_currency"] != "CNY" {
		t.Errorf("notification amount %v", amt)
	}
	rest := e.mustRefund(t, e.refundBody("TC", "RC2", 7500, recv.URL))
	if rest.Amount.PayerRefund != 8765-2191 {
		t.Errorf("the last refund returns %d, want the rest %d", rest.Amount.PayerRefund, 8765-2191)
	}
	// The payer's balance is back where it started.
	if p := e.sb.Payer("oCNY"); p.Balance == nil || *p.Balance != 9000 {
		t.Errorf("balance after the refunds: %v", p.Balance)
	}
}

func TestQueryRefundErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{SubMchIDs: []string{"1900000999"}})
	e.paidOrder(t, "CQ", "oQuery", "TQ", sandbox.PayerConfig{})
	a := e.mustRefund(t, e.refundBody("TQ", "RQ", 1, e.sinkURL))
	get := func(path string) error {
		_, err := e.client.Get(ctx(t), e.apiURL+refundsV3+path)
		return err
	}
	ok := "sp_mchid=" + e.creds.MchID + "&sub_mchid=" + e.creds.SubMchID
	if err := get("/id/" + a.ID + "?" + ok); err != nil {
		t.Fatalf("query: %v", err)
	}
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/id/50300000000000000000000000000?" + ok, 404, sandbox.CodeResourceNotExists},
		{"/out-refund-no/NOPE?" + ok, 404, sandbox.CodeResourceNotExists},
		{"/out-refund-no/RQ?sp_mchid=" + e.creds.MchID + "&sub_mchid=1900000999", 404, sandbox.CodeResourceNotExists},
		{"/id/" + a.ID + "?sp_mchid=" + e.creds.MchID + "&sub_mchid=1900000999", 404, sandbox.CodeResourceNotExists},
		{"/out-refund-no/RQ?sub_mchid=" + e.creds.SubMchID, 400, sandbox.CodeParamError},
		{"/out-refund-no/RQ?sp_mchid=" + e.creds.MchID, 400, sandbox.CodeParamError},
		{"/out-refund-no/RQ?sp_mchid=1&sub_mchid=" + e.creds.SubMchID, 403, sandbox.CodeNoAuth},
		{"/out-refund-no/RQ?sp_mchid=" + e.creds.MchID + "&sub_mchid=1", 403, sandbox.CodeNoAuth},
	} {
		if err := get(tc.path); err == nil {
			t.Errorf("GET %s answered", tc.path)
		} else {
			apiError(t, err, tc.status, tc.code)
		}
	}
}

// TestRefundLostAnswer: a refund whose answer is lost is applied; the resend with the
// same number answers it without refunding twice.
func TestRefundLostAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CF", "oFault", "TF", sandbox.PayerConfig{})
	if err := e.sb.SetFaults(sandbox.Faults{Rules: []sandbox.FaultRule{
		{Kind: sandbox.FaultLoseResponse, Method: "POST", Path: refundsV3, Count: 1},
		{Kind: sandbox.FaultSystemError, Method: "POST", Path: refundsV3, Count: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	body := e.refundBody("TF", "RF", 700, e.sinkURL)
	if _, err := e.refund(t, body); err == nil {
		t.Fatal("the lost answer arrived")
	}
	r := e.ledgerRefund(t, "RF")
	if r.Applied != 1 || r.Status != sandbox.RefundSuccess {
		t.Fatalf("after the lost answer: %+v", r)
	}
	_, err := e.refund(t, body) // the injected SYSTEM_ERROR: nothing executed
	apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)
	a := e.mustRefund(t, body)
	if a.ID != r.RefundID {
		t.Errorf("the resend answered %s, want %s", a.ID, r.RefundID)
	}
	if r := e.ledgerRefund(t, "RF"); r.Applied != 1 || r.Requests != 2 || len(e.sb.Refunds()) != 1 {
		t.Errorf("after the resend: %+v", r)
	}
	if got := e.sb.FaultCounts(); got[sandbox.FaultLoseResponse] != 1 || got[sandbox.FaultSystemError] != 1 {
		t.Errorf("faults %v", got)
	}
}

func TestRefundPayerConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/payers/oCfg:configure",
		map[string]any{"refund_behavior": "NOT_ENOUGH", "refund_not_enough_attempts": 3})
	if status != http.StatusOK || out["refund_behavior"] != "NOT_ENOUGH" || out["refund_not_enough_attempts"] != 3.0 {
		t.Errorf("configure: %d %v", status, out)
	}
	for _, bad := range []map[string]any{
		{"refund_behavior": "SOMETIMES"},
		{"refund_behavior": "SUCCEED", "refund_not_enough_attempts": 2},
		{"refund_behavior": "NOT_ENOUGH", "refund_not_enough_attempts": -1},
		{"refund_behavior": "SUCCEED", "refund_settle_after_ms": 10},
		{"refund_behavior": "PROCESSING", "refund_settle_after_ms": -10},
		{"refund_behaviour": "CLOSED"},
	} {
		if status, out := e.control(t, http.MethodPost, "/sandbox/v1/payers/oCfg:configure", bad); status != http.StatusBadRequest ||
			out["code"] != "INVALID_ARGUMENT" {
			t.Errorf("configure %v: %d %v", bad, status, out)
		}
	}
}
