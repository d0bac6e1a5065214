package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/papayd/papayd/internal/service"
)

// refundsPath is the Global refund API (not papay's own: refunds of papay
// orders go through the generic endpoint).
const refundsPath = "/v3/global/refunds"

// refundBody is the body of POST /v3/global/refunds. Unlike the papay
// calls it names the service provider (sp_mchid). One of transaction_id
// and out_trade_no is sent, the first when known (WeChat's advice).
type refundBody struct {
	SpMchID       string           `json:"sp_mchid"`
	SubMchID      string           `json:"sub_mchid"`
	SPAppID       string           `json:"sp_appid"`
	SubAppID      string           `json:"sub_appid,omitempty"`
	TransactionID string           `json:"transaction_id,omitempty"`
	OutTradeNo    string           `json:"out_trade_no,omitempty"`
	OutRefundNo   string           `json:"out_refund_no"`
	Reason        string           `json:"reason,omitempty"`
	Amount        refundAmountBody `json:"amount"`
	NotifyURL     string           `json:"notify_url,omitempty"`
}

type refundAmountBody struct {
	Refund   int64  `json:"refund"`
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
}

// CreateRefund applies for a refund. WeChat's answer means "accepted": its
// Status is usually empty, and the outcome comes by query or notification.
// A refusal is a *service.RemoteError (NOT_ENOUGH, BIZERR_NEED_RETRY,
// SYSTEM_ERROR and FREQUENCY_LIMITED ask for the same out_refund_no
// later; OUT_REFUND_NO_USED, INVALID_REQUEST, PARAM_ERROR ... are final).
// Like a deduction, the call is keyed (out_refund_no refunds at most once)
// and retried within the Client's policy; a refusal that answers a retry
// after an attempt whose outcome is unknown is an unknown outcome too. An
// answer that does not come, verify or decode, or that names another
// refund, wraps service.ErrWeChatUnavailable: the refund must be queried.
// Keys the answer leaves out (out_refund_no, the order) are taken from
// req.
func (c *Client) CreateRefund(ctx context.Context, req service.RefundRequest) (service.RemoteRefund, error) {
	b := refundBody{
		SpMchID: c.mchID, SubMchID: req.SubMchID, SPAppID: req.SPAppID, SubAppID: req.SubAppID,
		OutRefundNo: req.OutRefundNo, Reason: req.Reason, NotifyURL: req.NotifyURL,
		Amount: refundAmountBody{Refund: req.Refund, Total: req.Total, Currency: req.Currency},
	}
	if req.TransactionID != "" {
		b.TransactionID = req.TransactionID
	} else {
		b.OutTradeNo = req.OutTradeNo
	}
	body, err := marshal(b)
	if err != nil {
		return service.RemoteRefund{}, fmt.Errorf("wechatpay create refund: %w", err)
	}
	a, err := c.call(ctx, callSpec{sdk: c.sdk, method: http.MethodPost, path: refundsPath, body: body, refusalAfterUnknown: true})
	if err != nil {
		return service.RemoteRefund{}, err
	}
	return c.refundAnswer(ctx, http.MethodPost, refundsPath, a.body, false, refundWant{
		subMchID: req.SubMchID, outRefundNo: req.OutRefundNo, transactionID: req.TransactionID, outTradeNo: req.OutTradeNo})
}

// QueryRefund reads a refund by q.RefundID, or by q.OutRefundNo when
// RefundID is empty, within RefundQueryLimit (see queryGate). A refund
// WeChat does not know is a *service.RemoteError whose NotFound() is true
// (404 RESOURCE_NOT_EXISTS). An answer that does not decode, has no
// status, or names another refund wraps service.ErrWeChatUnavailable. An
// optional query beyond the limit wraps service.ErrRateLimited.
func (c *Client) QueryRefund(ctx context.Context, q service.RefundQuery) (service.RemoteRefund, error) {
	key := q.SubMchID + "\x00" + q.RefundID + "\x00" + q.OutRefundNo
	return do(ctx, c.refundGate, key, func(ctx context.Context) (service.RemoteRefund, error) {
		return c.queryRefund(ctx, q)
	})
}

func (c *Client) queryRefund(ctx context.Context, q service.RefundQuery) (service.RemoteRefund, error) {
	want := refundWant{subMchID: q.SubMchID}
	var path string
	switch {
	case q.RefundID != "":
		seg, err := pathSegment(q.RefundID)
		if err != nil {
			return service.RemoteRefund{}, fmt.Errorf("wechatpay query refund: refund id: %w", err)
		}
		path, want.refundID = refundsPath+"/id/"+seg, q.RefundID
	case q.OutRefundNo != "":
		seg, err := pathSegment(q.OutRefundNo)
		if err != nil {
			return service.RemoteRefund{}, fmt.Errorf("wechatpay query refund: out_refund_no: %w", err)
		}
		path, want.outRefundNo = refundsPath+"/out-refund-no/"+seg, q.OutRefundNo
	default:
		return service.RemoteRefund{}, errors.New("wechatpay query refund: no refund id and no out_refund_no")
	}
	// In institutional mode both merchants go in the query string of a GET.
	query := url.Values{"sp_mchid": {c.mchID}, "sub_mchid": {q.SubMchID}}
	answer, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return service.RemoteRefund{}, err
	}
	return c.refundAnswer(ctx, http.MethodGet, path, answer, true, want)
}

// refundWant is what a refund answer must agree with (empty: not checked)
// and what it falls back on.
type refundWant struct {
	subMchID, refundID, outRefundNo, transactionID, outTradeNo string
}

// refundAnswer parses a verified refund answer and checks that it is about
// the refund asked for; needStatus makes an answer without status
// unusable (a query must tell the state; a create answer need not).
func (c *Client) refundAnswer(ctx context.Context, method, path string, answer []byte, needStatus bool, want refundWant) (service.RemoteRefund, error) {
	r, err := parseRefund(answer)
	switch {
	case err != nil:
		return service.RemoteRefund{}, c.unusable(ctx, method, path, "refund answer does not decode")
	case needStatus && r.Status == "":
		return service.RemoteRefund{}, c.unusable(ctx, method, path, "refund answer has no status")
	case mismatch(r.SpMchID, c.mchID) || mismatch(r.SubMchID, want.subMchID) ||
		mismatch(r.RefundID, want.refundID) || mismatch(r.OutRefundNo, want.outRefundNo):
		return service.RemoteRefund{}, c.unusable(ctx, method, path, "refund answer names another refund")
	case mismatch(r.TransactionID, want.transactionID) || mismatch(r.OutTradeNo, want.outTradeNo):
		return service.RemoteRefund{}, c.unusable(ctx, method, path, "refund answer names another order")
	}
	r.SpMchID = first(r.SpMchID, c.mchID)
	r.SubMchID = first(r.SubMchID, want.subMchID)
	r.RefundID = first(r.RefundID, want.refundID)
	r.OutRefundNo = first(r.OutRefundNo, want.outRefundNo)
	r.TransactionID = first(r.TransactionID, want.transactionID)
	r.OutTradeNo = first(r.OutTradeNo, want.outTradeNo)
	return r, nil
}
