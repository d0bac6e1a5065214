package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// refundPath is WeChat Pay's refund endpoint.
const refundPath = "/v3/global/refunds"

// refundFast lets a test see the reconciler send and query refunds within
// a second: a 300ms spacing between one charge's refunds instead of a
// minute, and the backoff in milliseconds.
var refundFast = map[string]string{
	"PAPAYD_RECONCILE_INTERVAL":    "50ms",
	"PAPAYD_RECONCILE_FIRST_CHECK": "200ms",
	"PAPAYD_RECONCILE_TIME_SCALE":  "0.001",
	"PAPAYD_REFUND_SPACING":        "300ms",
}

func (p *papayd) refunds() papayv1.RefundServiceClient { return papayv1.NewRefundServiceClient(p.conn) }

func createRefund(t *testing.T, p *papayd, req *papayv1.CreateRefundRequest) *papayv1.Refund {
	t.Helper()
	resp, err := p.refunds().CreateRefund(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateRefund(%s): %v", req.GetOutRefundNo(), err)
	}
	return resp.GetRefund()
}

func getRefund(t *testing.T, p *papayd, no string, refresh bool) *papayv1.Refund {
	t.Helper()
	resp, err := p.refunds().GetRefund(context.Background(), &papayv1.GetRefundRequest{OutRefundNo: no, Refresh: refresh})
	if err != nil {
		t.Fatalf("GetRefund(%s): %v", no, err)
	}
	return resp.GetRefund()
}

// waitRefund polls GetRefund (no refresh: only notifications and the
// reconciler move it) until the refund is in state.
func waitRefund(t *testing.T, p *papayd, no string, state papayv1.RefundState) *papayv1.Refund {
	t.Helper()
	var r *papayv1.Refund
	eventually(t, no+" "+state.String(), func() bool {
		r = getRefund(t, p, no, false)
		return r.GetState() == state
	})
	return r
}

// wxRefund is the sandbox's ledger entry of out_refund_no, read through
// the control API (GET /sandbox/v1/refunds/{out_refund_no}); ok is false
// when WeChat holds no refund under that number.
func (p *papayd) wxRefund(no string) (r sandbox.Refund, ok bool) {
	p.t.Helper()
	switch code := p.do(http.MethodGet, "/sandbox/v1/refunds/"+no, nil, &r); code {
	case http.StatusOK:
		return r, true
	case http.StatusNotFound:
		return sandbox.Refund{}, false
	default:
		p.t.Fatalf("GET /sandbox/v1/refunds/%s: HTTP %d", no, code)
		return sandbox.Refund{}, false
	}
}

// wxRefundsOf is the sandbox's refunds of one order and the sum of their
// Applied (GET /sandbox/v1/refunds?out_trade_no=).
func (p *papayd) wxRefundsOf(outTradeNo string) ([]sandbox.Refund, int) {
	p.t.Helper()
	var out struct {
		Refunds []sandbox.Refund `json:"refunds"`
		Applied int              `json:"applied"`
	}
	if code := p.do(http.MethodGet, "/sandbox/v1/refunds?out_trade_no="+outTradeNo, nil, &out); code != http.StatusOK {
		p.t.Fatalf("GET /sandbox/v1/refunds?out_trade_no=%s: HTTP %d", outTradeNo, code)
	}
	return out.Refunds, out.Applied
}

// paidCharge signs an agreement for openid (payer configured with cfg, if
// any) and makes a SUCCEEDED charge of total HKD.
func paidCharge(t *testing.T, p *papayd, openid, no string, total int64, cfg map[string]any) *papayv1.Charge {
	t.Helper()
	a := signed(t, p, openid)
	if cfg != nil {
		p.configurePayer(openid, cfg)
	}
	c := createCharge(t, p, chargeReq(no, a.GetContractId(), total))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge %s = %v", no, c)
	}
	return c
}

// refundSends waits until papayd's audit of its refund sends has n
// answered 200 (a send's audit row is written after its answer, which may
// come after the REFUND.SUCCESS notification that made the refund final)
// and returns the sends by HTTP status.
func (p *papayd) refundSends(n int) map[int]int {
	p.t.Helper()
	var calls map[int]int
	eventually(p.t, fmt.Sprintf("%d refund sends audited", n), func() bool {
		calls = p.callsTo(refundPath)
		return calls[http.StatusOK] >= n
	})
	return calls
}

func grpcCode(err error) codes.Code {
	code, _, _ := statusDetails(err)
	return code
}

// eventsOfType lists papayd's events of one type, oldest first.
func eventsOfType(t *testing.T, p *papayd, typ string) []*papayv1.Event {
	t.Helper()
	resp, err := papayv1.NewEventServiceClient(p.conn).ListEvents(context.Background(),
		&papayv1.ListEventsRequest{Types: []string{typ}, PageSize: 100})
	if err != nil {
		t.Fatalf("ListEvents(%s): %v", typ, err)
	}
	return resp.GetEvents()
}

// refundEventsAbout counts the events of type typ about out_refund_no.
func refundEventsAbout(t *testing.T, p *papayd, typ, no string) int {
	t.Helper()
	n := 0
	for _, e := range eventsOfType(t, p, typ) {
		if e.GetRefund().GetOutRefundNo() == no {
			n++
		}
	}
	return n
}

// TestRefundSucceeds: a cross-border charge (HKD paid in CNY) refunded in
// two parts. Each refund ends SUCCEEDED with the payer's share at the
// order's rate, the last one returning exactly what is left of the payer's
// total; the charge's refunded_total follows, and WeChat took each refund
// off the order once.
func TestRefundSucceeds(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	c := paidCharge(t, p, "oRefund-ok", "RF-OK", 8800, map[string]any{"currency": "CNY", "exchange_rate": 90000000})
	if c.GetPayerTotal() != 7920 || c.GetPayerCurrency() != "CNY" {
		t.Fatalf("cross-border charge %v", c)
	}

	r := createRefund(t, p, refundReq("RF-OK-1", "RF-OK", 3000))
	if r.GetRefundId() == "" || r.GetTransactionId() != c.GetTransactionId() || r.GetChargeTotal() != 8800 || r.GetSubMchid() != c.GetSubMchid() {
		t.Fatalf("refund answer %v", r)
	}
	done := waitRefund(t, p, "RF-OK-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if done.GetPayerRefund() != 2700 || done.GetPayerCurrency() != "CNY" || done.GetExchangeRate().GetRate() != 90000000 ||
		done.GetSuccessTime() == nil || done.GetStatus() != "SUCCESS" || done.GetSpAppid() == "" {
		t.Fatalf("succeeded refund %v", done)
	}
	if got := getCharge(t, p, "RF-OK", false); got.GetRefundedTotal() != 3000 || got.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge after one refund: refunded_total %d, %v", got.GetRefundedTotal(), got.GetState())
	}

	// The rest of the charge: 5800 HKD, and exactly the rest of the 7920 CNY.
	createRefund(t, p, refundReq("RF-OK-2", "RF-OK", 5800))
	rest := waitRefund(t, p, "RF-OK-2", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if rest.GetPayerRefund() != 7920-2700 {
		t.Fatalf("last refund returns %d CNY, want %d", rest.GetPayerRefund(), 7920-2700)
	}
	if got := getCharge(t, p, "RF-OK", false); got.GetRefundedTotal() != 8800 {
		t.Fatalf("refunded_total %d, want 8800", got.GetRefundedTotal())
	}
	wx, applied := p.wxRefundsOf("RF-OK")
	if len(wx) != 2 || applied != 2 || wx[0].Status != sandbox.RefundSuccess || wx[1].Status != sandbox.RefundSuccess {
		t.Fatalf("WeChat's refunds of RF-OK: %+v (applied %d)", wx, applied)
	}
	if o, _ := p.app.Sandbox().Order("RF-OK"); o.Refunded != 8800 {
		t.Fatalf("WeChat's order refunded %d", o.Refunded)
	}
	for _, no := range []string{"RF-OK-1", "RF-OK-2"} {
		if n, m := refundEventsAbout(t, p, "refund.created", no), refundEventsAbout(t, p, "refund.succeeded", no); n != 1 || m != 1 {
			t.Fatalf("%s: %d refund.created and %d refund.succeeded events", no, n, m)
		}
	}
}

// TestRefundProcessingThenSucceeds: WeChat accepts the refund as
// PROCESSING; its settlement (REFUND.SUCCESS) makes it SUCCEEDED.
func TestRefundProcessingThenSucceeds(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	paidCharge(t, p, "oRefund-slow", "RF-SLOW", 2000,
		map[string]any{"refund_behavior": "PROCESSING", "refund_settle_after_ms": 1000})
	r := createRefund(t, p, refundReq("RF-SLOW-1", "RF-SLOW", 500))
	if r.GetState() != papayv1.RefundState_REFUND_STATE_PROCESSING || r.GetRefundId() == "" {
		t.Fatalf("refund answer %v, want PROCESSING", r)
	}
	if c := getCharge(t, p, "RF-SLOW", false); c.GetRefundedTotal() != 0 {
		t.Fatalf("refunded_total %d while the refund is PROCESSING", c.GetRefundedTotal())
	}
	done := waitRefund(t, p, "RF-SLOW-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if done.GetRefundId() != r.GetRefundId() || done.GetSuccessTime() == nil {
		t.Fatalf("settled refund %v", done)
	}
	if c := getCharge(t, p, "RF-SLOW", false); c.GetRefundedTotal() != 500 {
		t.Fatalf("refunded_total %d, want 500", c.GetRefundedTotal())
	}
	if wx, ok := p.wxRefund("RF-SLOW-1"); !ok || wx.Status != sandbox.RefundSuccess || wx.Applied != 1 {
		t.Fatalf("WeChat's refund %+v", wx)
	}
}

// TestRefundClosed: WeChat closes the refund; nothing is refunded, and the
// amount may be refunded again.
func TestRefundClosed(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	paidCharge(t, p, "oRefund-closed", "RF-CLOSED", 1000, map[string]any{"refund_behavior": "CLOSED"})
	createRefund(t, p, refundReq("RF-CLOSED-1", "RF-CLOSED", 1000))
	closed := waitRefund(t, p, "RF-CLOSED-1", papayv1.RefundState_REFUND_STATE_CLOSED)
	if closed.GetStatus() != "CLOSED" || closed.GetSuccessTime() != nil {
		t.Fatalf("closed refund %v", closed)
	}
	if c := getCharge(t, p, "RF-CLOSED", false); c.GetRefundedTotal() != 0 {
		t.Fatalf("refunded_total %d after a CLOSED refund", c.GetRefundedTotal())
	}
	if n := refundEventsAbout(t, p, "refund.closed", "RF-CLOSED-1"); n != 1 {
		t.Fatalf("%d refund.closed events", n)
	}
	// A CLOSED refund takes nothing off the charge: the whole amount again.
	p.configurePayer("oRefund-closed", map[string]any{"refund_behavior": "SUCCEED"})
	createRefund(t, p, refundReq("RF-CLOSED-2", "RF-CLOSED", 1000))
	waitRefund(t, p, "RF-CLOSED-2", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if c := getCharge(t, p, "RF-CLOSED", false); c.GetRefundedTotal() != 1000 {
		t.Fatalf("refunded_total %d, want 1000", c.GetRefundedTotal())
	}
}

// TestRefundAbnormalResolved: the money cannot reach the user (ABNORMAL);
// it still counts against the charge. The merchant's staff resolve it in
// the merchant platform (the sandbox's :resolve), and REFUND.SUCCESS or
// REFUND.CLOSED ends it; when that notification is lost, the reconciler's
// periodic query of ABNORMAL refunds (PAPAYD_REFUND_ABNORMAL_CHECK) does.
func TestRefundAbnormalResolved(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, resolution string
		lost             bool // the resolution's notification is dropped
		state            papayv1.RefundState
		refunded         int64
	}{
		{"SUCCESS", "SUCCESS", false, papayv1.RefundState_REFUND_STATE_SUCCEEDED, 700},
		{"CLOSED", "CLOSED", false, papayv1.RefundState_REFUND_STATE_CLOSED, 0},
		{"SUCCESS, notification lost", "SUCCESS", true, papayv1.RefundState_REFUND_STATE_SUCCEEDED, 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			settings := maps.Clone(refundFast)
			settings["PAPAYD_REFUND_ABNORMAL_CHECK"] = "300ms"
			p := startWith(t, "", settings)
			paidCharge(t, p, "oRefund-abnormal", "RF-ABN", 1000, map[string]any{"refund_behavior": "ABNORMAL"})
			createRefund(t, p, refundReq("RF-ABN-1", "RF-ABN", 700))
			abn := waitRefund(t, p, "RF-ABN-1", papayv1.RefundState_REFUND_STATE_ABNORMAL)
			if abn.GetStatus() != "ABNORMAL" {
				t.Fatalf("abnormal refund %v", abn)
			}
			if n := refundEventsAbout(t, p, "refund.abnormal", "RF-ABN-1"); n != 1 {
				t.Fatalf("%d refund.abnormal events", n)
			}
			// The 700 stay taken while ABNORMAL: 400 more is over the total.
			_, err := p.refunds().CreateRefund(context.Background(), refundReq("RF-ABN-2", "RF-ABN", 400))
			if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "REFUND_EXCEEDS_CHARGE" {
				t.Fatalf("refund beyond an ABNORMAL one: %v %q", code, reason)
			}
			if tc.lost {
				withFaults(t, p.app.Sandbox(), sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "REFUND." + tc.resolution, Count: 1})
			}
			var resolved sandbox.Refund
			if code := p.do(http.MethodPost, "/sandbox/v1/refunds/RF-ABN-1:resolve", map[string]any{"status": tc.resolution}, &resolved); code != http.StatusOK {
				t.Fatalf("resolve: HTTP %d", code)
			}
			got := waitRefund(t, p, "RF-ABN-1", tc.state)
			if got.GetRefundId() != abn.GetRefundId() {
				t.Fatalf("resolved refund %v", got)
			}
			if c := getCharge(t, p, "RF-ABN", false); c.GetRefundedTotal() != tc.refunded {
				t.Fatalf("refunded_total %d, want %d", c.GetRefundedTotal(), tc.refunded)
			}
			if wx, _ := p.wxRefund("RF-ABN-1"); wx.Applied != 1 || string(wx.Status) != tc.resolution {
				t.Fatalf("WeChat's refund %+v", wx)
			}
			resolvedBy := 0
			for _, n := range p.notificationsAbout("RF-ABN") {
				if n.EventType == "REFUND."+tc.resolution {
					resolvedBy++
				}
			}
			if want := map[bool]int{false: 1, true: 0}[tc.lost]; resolvedBy != want {
				t.Fatalf("%d REFUND.%s notifications recorded, want %d", resolvedBy, tc.resolution, want)
			}
		})
	}
}

// TestRefundRefusedAtFirstSendIsFailed: papayd checks every refusal of
// the simulator it can foresee before calling (an unpaid or unknown
// charge, another currency, the total, the 50, the year). One it cannot is
// OUT_REFUND_NO_USED for a number it does not know: here a papayd restored
// from a copy of its data directory taken before the refund was made,
// asked again under the same number for another amount. WeChat refuses;
// the refund is FAILED with WeChat's code, and nothing more is refunded.
func TestRefundRefusedAtFirstSendIsFailed(t *testing.T) {
	t.Parallel()
	sb, env := liveSimulator(t, "2s")
	env["PAPAYD_MERCHANT_CATEGORY_CODE"] = "5999"
	dir := env["PAPAYD_DATA_DIR"]
	p := startWith(t, dir, env)
	pre := presign(t, p, "oRefund-restored")
	if _, err := sb.SignSession(pre.GetSessionId(), sandbox.User{}); err != nil {
		t.Fatal(err)
	}
	a := waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	createCharge(t, p, chargeReq("RF-RESTORED", a.GetContractId(), 1000))
	waitCharge(t, p, "RF-RESTORED", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	p.stop()
	restored := filepath.Join(t.TempDir(), "restored")
	if err := os.CopyFS(restored, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	p = startWith(t, dir, env)
	createRefund(t, p, refundReq("RF-RESTORED-1", "RF-RESTORED", 100))
	waitRefund(t, p, "RF-RESTORED-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	p.stop()

	env["PAPAYD_DATA_DIR"] = restored // (the settings name the data directory)
	q := startWith(t, restored, env)
	r := createRefund(t, q, refundReq("RF-RESTORED-1", "RF-RESTORED", 200))
	if r.GetState() != papayv1.RefundState_REFUND_STATE_FAILED || r.GetFailureCode() != "OUT_REFUND_NO_USED" || r.GetFailureMessage() == "" {
		t.Fatalf("refused refund %v, want FAILED OUT_REFUND_NO_USED", r)
	}
	if n := refundEventsAbout(t, q, "refund.failed", "RF-RESTORED-1"); n != 1 {
		t.Fatalf("%d refund.failed events", n)
	}
	wx, ok := sb.Refund("", "RF-RESTORED-1")
	if !ok || wx.Refund != 100 || wx.Requests != 1 || wx.Applied != 1 {
		t.Fatalf("WeChat's refund %+v", wx)
	}
	if o, _ := sb.Order("RF-RESTORED"); o.Refunded != 100 {
		t.Fatalf("WeChat's order refunded %d", o.Refunded)
	}
	// Final: the same request again is answered as recorded, without a call.
	before := q.callsTo(refundPath)
	if again := createRefund(t, q, refundReq("RF-RESTORED-1", "RF-RESTORED", 200)); again.GetState() != papayv1.RefundState_REFUND_STATE_FAILED {
		t.Fatalf("retry of a FAILED refund %v", again)
	}
	if after := q.callsTo(refundPath); !equalCounts(before, after) {
		t.Fatalf("a FAILED refund's retry called WeChat: %v -> %v", before, after)
	}
	if c := getCharge(t, q, "RF-RESTORED", false); c.GetRefundedTotal() != 0 {
		t.Fatalf("refunded_total %d after a refusal", c.GetRefundedTotal())
	}
}

// TestRefundRulesCheckedBeforeWeChat: a refund beyond what is left of the
// charge, and a refund of a charge that did not succeed, are refused by
// papayd; WeChat is never called and nothing is recorded.
func TestRefundRulesCheckedBeforeWeChat(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	ctx := context.Background()
	a := signed(t, p, "oRefund-over")
	createCharge(t, p, chargeReq("RF-OVER", a.GetContractId(), 1000))
	createRefund(t, p, refundReq("RF-OVER-1", "RF-OVER", 600))
	waitRefund(t, p, "RF-OVER-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	calls := p.callsTo(refundPath)
	if calls[http.StatusOK] != 1 {
		t.Fatalf("audited refund calls %v, want one 200", calls)
	}

	p.configurePayer("oRefund-over", map[string]any{"behavior": "INSUFFICIENT_BALANCE"})
	if c := createCharge(t, p, chargeReq("RF-UNPAID", a.GetContractId(), 1000)); c.GetState() != papayv1.ChargeState_CHARGE_STATE_FAILED {
		t.Fatalf("charge %v", c)
	}
	for _, tc := range []struct {
		req    *papayv1.CreateRefundRequest
		code   codes.Code
		reason string
	}{
		{refundReq("RF-OVER-2", "RF-OVER", 401), codes.FailedPrecondition, "REFUND_EXCEEDS_CHARGE"},
		{refundReq("RF-OVER-3", "RF-OVER", 1001), codes.FailedPrecondition, "REFUND_EXCEEDS_CHARGE"},
		{refundReq("RF-UNPAID-1", "RF-UNPAID", 100), codes.FailedPrecondition, "CHARGE_NOT_SUCCEEDED"},
	} {
		_, err := p.refunds().CreateRefund(ctx, tc.req)
		if code, reason, _ := statusDetails(err); code != tc.code || reason != tc.reason {
			t.Errorf("%s: %v %q, want %v %q", tc.req.GetOutRefundNo(), code, reason, tc.code, tc.reason)
		}
		if _, err := p.refunds().GetRefund(ctx, &papayv1.GetRefundRequest{OutRefundNo: tc.req.GetOutRefundNo()}); grpcCode(err) != codes.NotFound {
			t.Errorf("%s: a refused refund was recorded (%v)", tc.req.GetOutRefundNo(), err)
		}
		if _, ok := p.wxRefund(tc.req.GetOutRefundNo()); ok {
			t.Errorf("%s reached WeChat", tc.req.GetOutRefundNo())
		}
	}
	if after := p.callsTo(refundPath); !equalCounts(after, calls) {
		t.Fatalf("refused refunds called WeChat: %v -> %v", calls, after)
	}
	if wx, applied := p.wxRefundsOf("RF-OVER"); len(wx) != 1 || applied != 1 {
		t.Fatalf("WeChat's refunds of RF-OVER: %d (applied %d)", len(wx), applied)
	}
	// Exactly what is left is fine.
	createRefund(t, p, refundReq("RF-OVER-4", "RF-OVER", 400))
	waitRefund(t, p, "RF-OVER-4", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if c := getCharge(t, p, "RF-OVER", false); c.GetRefundedTotal() != 1000 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
}

// TestRefundIdempotentUnderConcurrency: ten identical CreateRefund calls
// at once make one refund at WeChat, and all answer it; the same number
// with other parameters is OUT_REFUND_NO_REUSED.
func TestRefundIdempotentUnderConcurrency(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	// PROCESSING for a minute: the record does not change while the ten run.
	paidCharge(t, p, "oRefund-idem", "RF-IDEM", 5000,
		map[string]any{"refund_behavior": "PROCESSING", "refund_settle_after_ms": 60000})
	req := refundReq("RF-IDEM-1", "RF-IDEM", 1200)
	got := make([]*papayv1.Refund, 10)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.refunds().CreateRefund(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = resp.GetRefund()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got[0].GetRefundId() == "" || got[0].GetState() != papayv1.RefundState_REFUND_STATE_PROCESSING {
		t.Fatalf("refund %v", got[0])
	}
	for _, r := range got[1:] {
		if diff := cmp.Diff(got[0], r, protocmp.Transform()); diff != "" {
			t.Fatalf("callers disagree:\n%s", diff)
		}
	}
	wx, ok := p.wxRefund("RF-IDEM-1")
	if !ok || wx.Requests != 1 || wx.Applied != 1 || wx.RefundID != got[0].GetRefundId() {
		t.Fatalf("WeChat's refund after ten concurrent calls: %+v", wx)
	}
	if calls := p.callsTo(refundPath); calls[http.StatusOK] != 1 || len(calls) != 1 {
		t.Fatalf("audited refund calls %v, want one", calls)
	}
	for _, other := range []*papayv1.CreateRefundRequest{
		refundReq("RF-IDEM-1", "RF-IDEM", 1201),
		{OutRefundNo: "RF-IDEM-1", OutTradeNo: "RF-IDEM", Amount: req.GetAmount(), Reason: "another reason"},
	} {
		_, err := p.refunds().CreateRefund(context.Background(), other)
		if code, reason, _ := statusDetails(err); code != codes.AlreadyExists || reason != "OUT_REFUND_NO_REUSED" {
			t.Fatalf("reuse with other parameters: %v %q", code, reason)
		}
	}
	if wx, _ := p.wxRefund("RF-IDEM-1"); wx.Requests != 1 {
		t.Fatalf("a reused number reached WeChat: %+v", wx)
	}
}

// TestRefundSpacing: WeChat refunds one order at most once a minute
// (PAPAYD_REFUND_SPACING, here 1s: long enough for the two calls after the
// first to come within it on a busy machine). Two more refunds asked at
// once after a first are recorded PENDING and not sent; the reconciler
// sends each when its time comes, and they SUCCEED. WeChat saw the three
// sends the spacing apart, and never had to refuse one as too frequent.
func TestRefundSpacing(t *testing.T) {
	t.Parallel()
	settings := maps.Clone(refundFast)
	settings["PAPAYD_REFUND_SPACING"] = "1s"
	p := startWith(t, "", settings)
	paidCharge(t, p, "oRefund-spaced", "RF-SPACED", 3000, nil)
	first := createRefund(t, p, refundReq("RF-SPACED-1", "RF-SPACED", 1000))
	if first.GetAttempts() != 1 || first.GetState() == papayv1.RefundState_REFUND_STATE_PENDING {
		t.Fatalf("first refund %v", first)
	}
	for _, no := range []string{"RF-SPACED-2", "RF-SPACED-3"} {
		r := createRefund(t, p, refundReq(no, "RF-SPACED", 1000))
		if r.GetState() != papayv1.RefundState_REFUND_STATE_PENDING || r.GetAttempts() != 0 || r.GetRefundId() != "" || r.GetNextCheckTime() == nil {
			t.Fatalf("%s asked within the spacing: %v, want PENDING and not sent", no, r)
		}
		if _, ok := p.wxRefund(no); ok {
			t.Fatalf("%s was sent within the spacing", no)
		}
	}
	var sent, arrived []time.Time // papayd's recorded sends; their arrivals at WeChat
	for _, no := range []string{"RF-SPACED-1", "RF-SPACED-2", "RF-SPACED-3"} {
		r := waitRefund(t, p, no, papayv1.RefundState_REFUND_STATE_SUCCEEDED)
		wx, ok := p.wxRefund(no)
		if !ok || wx.Applied != 1 || wx.Requests != 1 || r.GetRefundId() != wx.RefundID {
			t.Fatalf("WeChat's %s: %+v", no, wx)
		}
		sent = append(sent, r.GetLastSendTime().AsTime())
		arrived = append(arrived, wx.CreateTime)
	}
	// papayd spaces its sends exactly (by the times it records them); WeChat
	// sees them arrive about as far apart, give or take how long each took
	// to reach it (a few ms here, more under the race detector on a busy
	// machine): at least half the spacing, where sends made together would
	// arrive a few ms apart.
	for i := 1; i < len(sent); i++ {
		if gap := sent[i].Sub(sent[i-1]); gap < time.Second {
			t.Fatalf("refunds %d and %d were sent %v apart, under the 1s spacing", i, i+1, gap)
		}
		if gap := arrived[i].Sub(arrived[i-1]); gap < 500*time.Millisecond {
			t.Fatalf("refunds %d and %d reached WeChat %v apart, under the 1s spacing", i, i+1, gap)
		}
	}
	if calls := p.refundSends(3); calls[http.StatusTooManyRequests] != 0 || calls[http.StatusOK] != 3 {
		t.Fatalf("audited refund calls %v", calls)
	}
	if c := getCharge(t, p, "RF-SPACED", false); c.GetRefundedTotal() != 3000 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
}

// TestRefundLostAnswerReconciled: WeChat applies the refund but every
// answer is lost, and so is REFUND.SUCCESS. The caller gets PENDING; the
// reconciler asks WeChat and records SUCCEEDED; WeChat refunded once.
func TestRefundLostAnswerReconciled(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	sb := p.app.Sandbox()
	paidCharge(t, p, "oRefund-lost", "RF-LOST", 1500, nil)
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultLoseResponse, Method: "POST", Path: refundPath, Count: 1000},
		sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "REFUND.SUCCESS", Count: 1000})
	r := createRefund(t, p, refundReq("RF-LOST-1", "RF-LOST", 900))
	if r.GetState() != papayv1.RefundState_REFUND_STATE_PENDING || r.GetAttempts() != 1 {
		t.Fatalf("refund with its answer lost: %v, want PENDING", r)
	}
	if wx, ok := p.wxRefund("RF-LOST-1"); !ok || wx.Applied != 1 {
		t.Fatalf("WeChat did not apply the refund: %+v", wx)
	}
	done := waitRefund(t, p, "RF-LOST-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	wx, _ := p.wxRefund("RF-LOST-1")
	if wx.Applied != 1 || done.GetRefundId() != wx.RefundID {
		t.Fatalf("WeChat's refund %+v, local %v", wx, done)
	}
	if _, applied := p.wxRefundsOf("RF-LOST"); applied != 1 {
		t.Fatalf("WeChat applied %d refunds of RF-LOST", applied)
	}
	if c := getCharge(t, p, "RF-LOST", false); c.GetRefundedTotal() != 900 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
	if sb.FaultCounts()[sandbox.FaultLoseResponse] == 0 {
		t.Fatal("no answer was lost")
	}
}

// TestRefundNotEnoughRetried: WeChat refuses the first three sends with
// NOT_ENOUGH (the merchant's balance). The refund stays PENDING and the
// reconciler sends it again under the same out_refund_no until it is
// accepted: four requests for the number at WeChat, one refund.
func TestRefundNotEnoughRetried(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	paidCharge(t, p, "oRefund-poor", "RF-POOR", 1000,
		map[string]any{"refund_behavior": "NOT_ENOUGH", "refund_not_enough_attempts": 3})
	r := createRefund(t, p, refundReq("RF-POOR-1", "RF-POOR", 1000))
	if r.GetState() != papayv1.RefundState_REFUND_STATE_PENDING || r.GetLastError() != "NOT_ENOUGH" {
		t.Fatalf("refused refund %v, want PENDING with NOT_ENOUGH", r)
	}
	done := waitRefund(t, p, "RF-POOR-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	wx, ok := p.wxRefund("RF-POOR-1")
	if !ok || wx.NotEnoughRefusals != 3 || wx.Requests != 1 || wx.Applied != 1 || wx.RefundID != done.GetRefundId() {
		t.Fatalf("WeChat's refund %+v", wx)
	}
	if calls := p.refundSends(1); calls[http.StatusForbidden] != 3 || calls[http.StatusOK] != 1 {
		t.Fatalf("audited refund sends %v, want three 403 and one 200", calls)
	}
	if done.GetAttempts() != 4 {
		t.Fatalf("refund attempts %d, want 4", done.GetAttempts())
	}
	if c := getCharge(t, p, "RF-POOR", false); c.GetRefundedTotal() != 1000 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
}

// TestRefundNotificationDuplicated: WeChat delivers REFUND.SUCCESS twice
// (same id and body, concurrently), and late: a refresh has already
// recorded the refund SUCCEEDED by asking WeChat. papayd applies the
// outcome once: one refund.succeeded event, the amount counted once.
func TestRefundNotificationDuplicated(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	sb := p.app.Sandbox()
	paidCharge(t, p, "oRefund-dup", "RF-DUP", 1000,
		map[string]any{"refund_behavior": "PROCESSING", "refund_settle_after_ms": 100})
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultDuplicateNotification, EventType: "REFUND.SUCCESS", Count: 1},
		sandbox.FaultRule{Kind: sandbox.FaultDelayNotification, EventType: "REFUND.SUCCESS", Count: 1, DelayMS: 500})
	createRefund(t, p, refundReq("RF-DUP-1", "RF-DUP", 600))
	eventually(t, "settled at WeChat", func() bool { wx, _ := p.wxRefund("RF-DUP-1"); return wx.Status == sandbox.RefundSuccess })
	if r := getRefund(t, p, "RF-DUP-1", true); r.GetState() != papayv1.RefundState_REFUND_STATE_SUCCEEDED {
		t.Fatalf("refreshed refund %v", r)
	}
	eventually(t, "both copies of REFUND.SUCCESS delivered", func() bool {
		n := 0
		for _, d := range sb.Deliveries() {
			if d.EventType == "REFUND.SUCCESS" && d.Delivered {
				n++
			}
		}
		return n == 2
	})
	if n := refundEventsAbout(t, p, "refund.succeeded", "RF-DUP-1"); n != 1 {
		t.Fatalf("%d refund.succeeded events for one refund", n)
	}
	if c := getCharge(t, p, "RF-DUP", false); c.GetRefundedTotal() != 600 {
		t.Fatalf("refunded_total %d, want 600", c.GetRefundedTotal())
	}
	if wx, _ := p.wxRefund("RF-DUP-1"); wx.Applied != 1 {
		t.Fatalf("WeChat's refund %+v", wx)
	}
	if got := sb.FaultCounts(); got[sandbox.FaultDuplicateNotification] == 0 || got[sandbox.FaultDelayNotification] == 0 {
		t.Fatalf("faults injected %v", got)
	}
}

// TestRefundOverREST drives the refund routes of the JSON gateway.
func TestRefundOverREST(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	c := paidCharge(t, p, "oRefund-rest", "RF-REST", 2500, nil)
	var raw json.RawMessage
	code := p.do(http.MethodPost, "/v1/refunds", map[string]any{
		"out_refund_no": "RF-REST-1", "transaction_id": c.GetTransactionId(),
		"amount": map[string]any{"refund": 800, "currency": "HKD"}, "reason": "returned",
	}, &raw)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/refunds: HTTP %d %s", code, raw)
	}
	var created papayv1.CreateRefundResponse
	if err := protojson.Unmarshal(raw, &created); err != nil {
		t.Fatal(err)
	}
	if r := created.GetRefund(); r.GetOutTradeNo() != "RF-REST" || r.GetRefundId() == "" || r.GetAmount().GetRefund() != 800 {
		t.Fatalf("created %v", r)
	}
	waitRefund(t, p, "RF-REST-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)

	var got papayv1.GetRefundResponse
	if code := p.do(http.MethodGet, "/v1/refunds/RF-REST-1", nil, &raw); code != http.StatusOK {
		t.Fatalf("GET /v1/refunds/RF-REST-1: HTTP %d %s", code, raw)
	}
	if err := protojson.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetRefund().GetState() != papayv1.RefundState_REFUND_STATE_SUCCEEDED || got.GetRefreshStatus() == papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED {
		t.Fatalf("GET by out_refund_no: %v", &got)
	}
	id := created.GetRefund().GetRefundId()
	if code := p.do(http.MethodGet, "/v1/refunds/refund-id/"+id+"?refresh=true", nil, &raw); code != http.StatusOK {
		t.Fatalf("GET by refund id: HTTP %d %s", code, raw)
	}
	got.Reset()
	if err := protojson.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetRefund().GetOutRefundNo() != "RF-REST-1" || got.GetRefreshStatus() != papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED {
		t.Fatalf("GET by refund id with refresh: %v", &got)
	}
	if code := p.do(http.MethodGet, "/v1/refunds?out_trade_no=RF-REST&state=REFUND_STATE_SUCCEEDED", nil, &raw); code != http.StatusOK {
		t.Fatalf("GET /v1/refunds: HTTP %d %s", code, raw)
	}
	var list papayv1.ListRefundsResponse
	if err := protojson.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.GetRefunds()) != 1 || list.GetRefunds()[0].GetRefundId() != id {
		t.Fatalf("list %v", &list)
	}

	var e restError
	if code := p.do(http.MethodPost, "/v1/refunds", map[string]any{
		"out_refund_no": "RF-REST-1", "out_trade_no": "RF-REST", "amount": map[string]any{"refund": 801, "currency": "HKD"}, "reason": "returned",
	}, &e); code != http.StatusConflict || e.reason() != "OUT_REFUND_NO_REUSED" {
		t.Fatalf("reused number: HTTP %d %+v", code, e)
	}
	e = restError{}
	if code := p.do(http.MethodPost, "/v1/refunds", map[string]any{
		"out_refund_no": "RF-REST-2", "out_trade_no": "RF-REST", "amount": map[string]any{"refund": 1701, "currency": "HKD"}, "reason": "returned",
	}, &e); code != http.StatusBadRequest || e.reason() != "REFUND_EXCEEDS_CHARGE" {
		t.Fatalf("over-refund: HTTP %d %+v", code, e)
	}
	e = restError{}
	if code := p.do(http.MethodGet, "/v1/refunds/NO-SUCH-REFUND", nil, &e); code != http.StatusNotFound {
		t.Fatalf("unknown refund: HTTP %d %+v", code, e)
	}
}

// TestRefundFrequencyLimitedRetried: papayd's spacing (1ms here) is
// shorter than WeChat's (the sandbox's minute × 0.02 = 1.2s), so WeChat
// refuses the second refund of the charge with 429 FREQUENCY_LIMITED. The
// refusal is not final: the refund is sent again under the same
// out_refund_no (by papayd's WeChat client within the call, else by the
// reconciler once it is PENDING) until WeChat takes it; one refund at
// WeChat.
func TestRefundFrequencyLimitedRetried(t *testing.T) {
	t.Parallel()
	settings := maps.Clone(refundFast)
	settings["PAPAYD_REFUND_SPACING"] = "1ms"
	settings["PAPAYD_SANDBOX_TIME_SCALE"] = "0.02"
	p := startWith(t, "", settings)
	paidCharge(t, p, "oRefund-freq", "RF-FREQ", 2000, nil)
	createRefund(t, p, refundReq("RF-FREQ-1", "RF-FREQ", 500))
	second := createRefund(t, p, refundReq("RF-FREQ-2", "RF-FREQ", 500))
	if second.GetState() == papayv1.RefundState_REFUND_STATE_FAILED {
		t.Fatalf("a refund refused as too frequent is FAILED: %v", second)
	}
	done := waitRefund(t, p, "RF-FREQ-2", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	wx, ok := p.wxRefund("RF-FREQ-2")
	if !ok || wx.Applied != 1 || wx.RefundID != done.GetRefundId() {
		t.Fatalf("WeChat's refund %+v", wx)
	}
	if calls := p.refundSends(2); calls[http.StatusTooManyRequests] == 0 || calls[http.StatusOK] != 2 {
		t.Fatalf("audited refund sends %v, want at least one 429 and two 200", calls)
	}
	if c := getCharge(t, p, "RF-FREQ", false); c.GetRefundedTotal() != 1000 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
}

// TestRefundConcurrentPartsNeverExceedCharge: ten different refunds of 300
// asked at once of a 1000 charge. Three fit: they are recorded (one sent,
// two waiting for the spacing) and SUCCEED; the other seven are refused
// REFUND_EXCEEDS_CHARGE before WeChat. WeChat never refunds more than the
// order's total.
func TestRefundConcurrentPartsNeverExceedCharge(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", refundFast)
	paidCharge(t, p, "oRefund-race", "RF-RACE", 1000, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []string
	refused := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			no := fmt.Sprintf("RF-RACE-%d", i)
			_, err := p.refunds().CreateRefund(context.Background(), refundReq(no, "RF-RACE", 300))
			mu.Lock()
			defer mu.Unlock()
			switch _, reason, _ := statusDetails(err); {
			case err == nil:
				accepted = append(accepted, no)
			case reason == "REFUND_EXCEEDS_CHARGE":
				refused++
			default:
				t.Errorf("%s: %v", no, err)
			}
		}()
	}
	wg.Wait()
	if len(accepted) != 3 || refused != 7 {
		t.Fatalf("%d accepted (%v), %d refused; want 3 and 7", len(accepted), accepted, refused)
	}
	for _, no := range accepted {
		waitRefund(t, p, no, papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	}
	wx, applied := p.wxRefundsOf("RF-RACE")
	if len(wx) != 3 || applied != 3 {
		t.Fatalf("WeChat's refunds of RF-RACE: %d (applied %d)", len(wx), applied)
	}
	if o, _ := p.app.Sandbox().Order("RF-RACE"); o.Refunded != 900 {
		t.Fatalf("WeChat refunded %d of the order", o.Refunded)
	}
	if c := getCharge(t, p, "RF-RACE", false); c.GetRefundedTotal() != 900 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
}

// TestRefundLimit: WeChat takes at most 50 refunds of one order. The 51st
// is refused REFUND_LIMIT_REACHED by papayd, without a call; CLOSED refunds
// count (WeChat keeps them), so the limit holds with money left.
func TestRefundLimit(t *testing.T) {
	t.Parallel()
	settings := maps.Clone(refundFast)
	settings["PAPAYD_REFUND_SPACING"] = "10ms" // the sandbox's is 6ms
	p := startWith(t, "", settings)
	paidCharge(t, p, "oRefund-many", "RF-MANY", 1000, map[string]any{"refund_behavior": "CLOSED"})
	for i := range 50 {
		if i == 45 {
			p.configurePayer("oRefund-many", map[string]any{"refund_behavior": "SUCCEED"})
		}
		createRefund(t, p, refundReq(fmt.Sprintf("RF-MANY-%d", i), "RF-MANY", 1))
	}
	eventually(t, "50 refunds final", func() bool {
		resp, err := p.refunds().ListRefunds(context.Background(), &papayv1.ListRefundsRequest{OutTradeNo: "RF-MANY", PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		final := 0
		for _, r := range resp.GetRefunds() {
			if s := r.GetState(); s == papayv1.RefundState_REFUND_STATE_SUCCEEDED || s == papayv1.RefundState_REFUND_STATE_CLOSED {
				final++
			}
		}
		return final == 50
	})
	if wx, applied := p.wxRefundsOf("RF-MANY"); len(wx) != 50 || applied != 50 {
		t.Fatalf("WeChat holds %d refunds (applied %d)", len(wx), applied)
	}
	before := p.refundSends(50)
	_, err := p.refunds().CreateRefund(context.Background(), refundReq("RF-MANY-50", "RF-MANY", 1))
	if code, reason, _ := statusDetails(err); code != codes.FailedPrecondition || reason != "REFUND_LIMIT_REACHED" {
		t.Fatalf("51st refund: %v %q", code, reason)
	}
	if after := p.callsTo(refundPath); !equalCounts(before, after) {
		t.Fatalf("the 51st refund called WeChat: %v -> %v", before, after)
	}
	if c := getCharge(t, p, "RF-MANY", false); c.GetRefundedTotal() != 5 {
		t.Fatalf("refunded_total %d, want 5", c.GetRefundedTotal())
	}
}

// TestRefundWaitingSurvivesRestart: a refund waiting for the spacing is
// only a PENDING record; papayd stops before its time comes. Once
// restarted, its reconciler sends it when its time comes, and it SUCCEEDS:
// one refund at WeChat, sent no sooner than the spacing allows.
func TestRefundWaitingSurvivesRestart(t *testing.T) {
	t.Parallel()
	sb, env := liveSimulator(t, "2s")
	env["PAPAYD_MERCHANT_CATEGORY_CODE"] = "5999"
	maps.Copy(env, refundFast)
	env["PAPAYD_REFUND_SPACING"] = "2s" // papayd stops well before the second's time
	dir := env["PAPAYD_DATA_DIR"]
	p := startWith(t, dir, env)
	pre := presign(t, p, "oRefund-restart")
	if _, err := sb.SignSession(pre.GetSessionId(), sandbox.User{}); err != nil {
		t.Fatal(err)
	}
	a := waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	createCharge(t, p, chargeReq("RF-RESTART", a.GetContractId(), 1000))
	waitCharge(t, p, "RF-RESTART", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	first := createRefund(t, p, refundReq("RF-RESTART-1", "RF-RESTART", 400))
	second := createRefund(t, p, refundReq("RF-RESTART-2", "RF-RESTART", 600))
	if second.GetState() != papayv1.RefundState_REFUND_STATE_PENDING || second.GetAttempts() != 0 {
		t.Fatalf("second refund %v, want PENDING and not sent", second)
	}
	p.stop()
	if _, ok := sb.Refund("", "RF-RESTART-2"); ok {
		t.Fatal("the waiting refund was sent before the restart")
	}

	q := startWith(t, dir, env)
	done := waitRefund(t, q, "RF-RESTART-2", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	wx, ok := sb.Refund("", "RF-RESTART-2")
	if !ok || wx.Applied != 1 || wx.Requests != 1 || wx.RefundID != done.GetRefundId() {
		t.Fatalf("WeChat's refund %+v", wx)
	}
	if gap := done.GetLastSendTime().AsTime().Sub(first.GetLastSendTime().AsTime()); gap < 2*time.Second {
		t.Fatalf("sent %v after the first, under the 2s spacing", gap)
	}
	waitRefund(t, q, "RF-RESTART-1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if c := getCharge(t, q, "RF-RESTART", false); c.GetRefundedTotal() != 1000 {
		t.Fatalf("refunded_total %d", c.GetRefundedTotal())
	}
	if o, _ := sb.Order("RF-RESTART"); o.Refunded != 1000 {
		t.Fatalf("WeChat refunded %d of the order", o.Refunded)
	}
}
