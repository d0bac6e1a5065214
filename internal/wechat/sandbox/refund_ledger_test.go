package sandbox_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// TestRefundLedgerViews: the refund listings a reconciliation compares with papayd's
// records, in Go and through the control API.
func TestRefundLedgerViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.paidOrder(t, "CV0", "oView0", "TV0", sandbox.PayerConfig{})
	e.paidOrder(t, "CV1", "oView1", "TV1", sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorClosed})
	a := e.mustRefund(t, e.refundBody("TV0", "RV0", 1000, e.sinkURL))
	e.mustRefund(t, e.refundBody("TV0", "RV0", 1000, e.sinkURL)) // a replay
	e.mustRefund(t, e.refundBody("TV0", "RV1", 2000, e.sinkURL))
	e.mustRefund(t, e.refundBody("TV1", "RV2", 500, e.sinkURL))

	refunds := e.sb.Refunds()
	if len(refunds) != 3 || refunds[0].OutRefundNo != "RV0" || refunds[0].RefundID != a.ID || refunds[0].Requests != 2 ||
		refunds[1].OutRefundNo != "RV1" || refunds[2].OutRefundNo != "RV2" || refunds[2].Status != sandbox.RefundClosed {
		t.Fatalf("refunds %+v", refunds)
	}
	for _, r := range refunds {
		if r.Applied != 1 {
			t.Errorf("%s applied %d times", r.OutRefundNo, r.Applied)
		}
	}
	orders := e.sb.Orders()
	if len(orders) != 2 || orders[0].Refunds != 2 || orders[0].Refunded != 3000 || orders[0].TradeState != sandbox.TradeRefund ||
		orders[1].Refunds != 1 || orders[1].Refunded != 0 {
		t.Errorf("orders %+v", orders)
	}

	status, out := e.control(t, http.MethodGet, "/sandbox/v1/refunds", nil)
	list, _ := out["refunds"].([]any)
	if status != http.StatusOK || len(list) != 3 || out["applied"] != 3.0 {
		t.Fatalf("GET refunds: %d %v", status, out)
	}
	if r := list[0].(map[string]any); r["out_refund_no"] != "RV0" || r["refund_id"] != a.ID || r["out_trade_no"] != "TV0" ||
		r["refund"] != 1000.0 || r["status"] != "SUCCESS" || r["applied"] != 1.0 || r["requests"] != 2.0 {
		t.Errorf("refund %v", r)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/refunds?out_trade_no=TV1", nil)
	if list, _ := out["refunds"].([]any); status != http.StatusOK || len(list) != 1 || out["applied"] != 1.0 {
		t.Errorf("GET refunds of TV1: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders/TV0/refunds", nil)
	if list, _ := out["refunds"].([]any); status != http.StatusOK || len(list) != 2 || out["applied"] != 2.0 {
		t.Errorf("GET refunds of order TV0: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders/TV0/refunds?sub_mchid=1", nil)
	if status != http.StatusNotFound || out["code"] != "NOT_FOUND" {
		t.Errorf("GET refunds of another sub-merchant's order: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders/TV0", nil)
	if status != http.StatusOK || out["refunds"] != 2.0 || out["refunded"] != 3000.0 || out["trade_state"] != "REFUND" {
		t.Errorf("GET order: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/refunds/RV2", nil)
	if status != http.StatusOK || out["status"] != "CLOSED" || out["behavior"] != "CLOSED" || out["sub_mchid"] != e.creds.SubMchID {
		t.Errorf("GET refund: %d %v", status, out)
	}
	for _, path := range []string{"/sandbox/v1/refunds/NOPE", "/sandbox/v1/refunds/RV2?sub_mchid=1", "/sandbox/v1/orders/NOPE/refunds"} {
		if status, out := e.control(t, http.MethodGet, path, nil); status != http.StatusNotFound || out["code"] != "NOT_FOUND" {
			t.Errorf("GET %s: %d %v", path, status, out)
		}
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/refunds?out_trade_no=NOPE", nil)
	if list, ok := out["refunds"].([]any); status != http.StatusOK || !ok || len(list) != 0 || out["applied"] != 0.0 {
		t.Errorf("GET refunds of no order: %d %v", status, out)
	}
}

// TestRefundNotificationSchedule: REFUND.* follow the refund schedule (16 attempts over
// about 24 hours), not papay's 10.
func TestRefundNotificationSchedule(t *testing.T) {
	t.Parallel()
	delays := sandbox.RefundRetryDelays()
	var total time.Duration
	for _, d := range delays {
		total += d
	}
	if len(delays) != sandbox.RefundMaxAttempts-1 || sandbox.RefundMaxAttempts != 16 || total != 24*time.Hour+4*time.Minute {
		t.Fatalf("%d delays over %v", len(delays), total)
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	e := newEnv(t, sandbox.Options{TimeScale: 0.000005}) // 24 h in about 430 ms
	e.paidOrder(t, "CD", "oDeliver", "TD", sandbox.PayerConfig{})
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e.mustRefund(t, e.refundBody("TD", "RD", 100, failing.URL))
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var log []sandbox.Delivery
	for _, d := range e.sb.Deliveries() {
		if d.EventType == sandbox.EventRefundSuccess {
			log = append(log, d)
		}
	}
	if len(log) != sandbox.RefundMaxAttempts {
		t.Fatalf("%d attempts, want %d", len(log), sandbox.RefundMaxAttempts)
	}
	for i, d := range log {
		if d.Delivered || d.Final != (i == len(log)-1) || d.StatusCode != http.StatusServiceUnavailable || d.Attempt != i+1 {
			t.Errorf("attempt %d: %+v", i+1, d)
		}
	}
}

// TestListRefunds: GET /v3/global/refunds pages through one order's refunds.
func TestListRefunds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	tx := e.paidOrder(t, "CLS", "oList", "TLS", sandbox.PayerConfig{})
	var ids []string
	for _, no := range []string{"RLS0", "RLS1", "RLS2"} {
		ids = append(ids, e.mustRefund(t, e.refundBody("TLS", no, 100, e.sinkURL)).ID)
	}
	list := func(query string) (sandbox.RefundList, error) {
		t.Helper()
		res, err := e.client.Get(ctx(t), e.apiURL+refundsV3+"?sp_mchid="+e.creds.MchID+"&sub_mchid="+e.creds.SubMchID+query)
		if err != nil {
			return sandbox.RefundList{}, err
		}
		var l sandbox.RefundList
		if err := core.UnMarshalResponse(res.Response, &l); err != nil {
			t.Fatal(err)
		}
		return l, nil
	}
	l, err := list("&out_trade_no=TLS")
	if err != nil {
		t.Fatal(err)
	}
	if l.TotalNum != 3 || l.CurrentTotalNum != 3 || len(l.Data) != 3 || l.Data[0].ID != ids[0] || l.Data[2].ID != ids[2] ||
		l.TransactionID != tx.TransactionID || l.OutTradeNo != "TLS" || l.Count != sandbox.DefaultRefundListCount {
		t.Errorf("list %+v", l)
	}
	l, err = list("&transaction_id=" + tx.TransactionID + "&offset=1&count=1")
	if err != nil {
		t.Fatal(err)
	}
	if l.TotalNum != 3 || l.CurrentTotalNum != 1 || len(l.Data) != 1 || l.Data[0].ID != ids[1] || l.Data[0].Status != sandbox.RefundSuccess {
		t.Errorf("page %+v", l)
	}
	if l, err = list("&out_trade_no=TLS&offset=5"); err != nil || l.CurrentTotalNum != 0 || l.Data == nil {
		t.Errorf("past the end: %+v, %v", l, err)
	}
	for _, tc := range []struct {
		query  string
		status int
		code   string
	}{
		{"&out_trade_no=NOPE", 404, sandbox.CodeResourceNotExists},
		{"", 400, sandbox.CodeParamError},
		{"&out_trade_no=TLS&count=21", 400, sandbox.CodeParamError},
		{"&out_trade_no=TLS&count=0", 400, sandbox.CodeParamError},
		{"&out_trade_no=TLS&offset=-1", 400, sandbox.CodeParamError},
	} {
		if _, err := list(tc.query); err == nil {
			t.Errorf("%q answered", tc.query)
		} else {
			apiError(t, err, tc.status, tc.code)
		}
	}
}
