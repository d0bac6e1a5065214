package sandbox

import (
	"net/http"
)

// refundsView is the control API's listing of refunds: Applied sums Refund.Applied, so
// a reconciliation sees at a glance whether an out_refund_no refunded twice.
type refundsView struct {
	Refunds []Refund `json:"refunds"`
	Applied int      `json:"applied"`
}

func newRefundsView(refunds []Refund) refundsView {
	v := refundsView{Refunds: refunds}
	if v.Refunds == nil {
		v.Refunds = []Refund{}
	}
	for _, r := range refunds {
		v.Applied += r.Applied
	}
	return v
}

// controlRefunds serves GET /sandbox/v1/refunds[?out_trade_no=&sub_mchid=]: the refund
// ledger, oldest first, optionally of one order or one sub-merchant.
func (s *Sandbox) controlRefunds(w http.ResponseWriter, r *http.Request) {
	no, subMchID := r.URL.Query().Get("out_trade_no"), r.URL.Query().Get("sub_mchid")
	var out []Refund
	for _, each := range s.Refunds() {
		if (no == "" || each.OutTradeNo == no) && (subMchID == "" || each.SubMchID == subMchID) {
			out = append(out, each)
		}
	}
	writeJSON(w, http.StatusOK, newRefundsView(out))
}

// controlOrderRefunds serves GET /sandbox/v1/orders/{out_trade_no}/refunds[?sub_mchid=]:
// the refunds of one order, oldest first (404 for an unknown order).
func (s *Sandbox) controlOrderRefunds(w http.ResponseWriter, r *http.Request) {
	no, subMchID := r.PathValue("out_trade_no"), r.URL.Query().Get("sub_mchid")
	found := false
	for _, o := range s.Orders() {
		found = found || (o.OutTradeNo == no && (subMchID == "" || o.SubMchID == subMchID))
	}
	if !found {
		writeControlError(w, ErrOrderNotFound)
		return
	}
	var out []Refund
	for _, each := range s.Refunds() {
		if each.OutTradeNo == no && (subMchID == "" || each.SubMchID == subMchID) {
			out = append(out, each)
		}
	}
	writeJSON(w, http.StatusOK, newRefundsView(out))
}

// controlGetRefund serves GET /sandbox/v1/refunds/{out_refund_no}[?sub_mchid=].
func (s *Sandbox) controlGetRefund(w http.ResponseWriter, r *http.Request) {
	refund, ok := s.Refund(r.URL.Query().Get("sub_mchid"), r.PathValue("out_refund_no"))
	if !ok {
		writeControlError(w, ErrRefundNotFound)
		return
	}
	writeJSON(w, http.StatusOK, refund)
}

// controlRefundAction serves POST /sandbox/v1/refunds/{out_refund_no}:resolve with the
// body {"status": "SUCCESS"|"CLOSED", "sub_mchid"?}.
func (s *Sandbox) controlRefundAction(w http.ResponseWriter, r *http.Request) {
	no, verb := cutVerb(r.PathValue("action"))
	if verb != "resolve" {
		writeJSON(w, http.StatusNotFound, controlError{"NOT_FOUND", "use {out_refund_no}:resolve"})
		return
	}
	var req struct {
		Status   RefundStatus `json:"status"`
		SubMchID string       `json:"sub_mchid"`
	}
	if !decodeStrict(w, r, &req, `{"status": "SUCCESS"|"CLOSED", "sub_mchid"?}`) {
		return
	}
	refund, err := s.ResolveRefund(req.SubMchID, no, req.Status)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, refund)
}
