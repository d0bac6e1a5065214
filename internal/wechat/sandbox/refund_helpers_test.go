package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const refundsV3 = "/v3/global/refunds"

// refundBody is a valid refund body of amount HKD from the 100.00 HKD order outTradeNo.
func (e *env) refundBody(outTradeNo, outRefundNo string, amount int64, notifyURL string) map[string]any {
	return map[string]any{
		"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "sp_appid": e.creds.SPAppID,
		"sub_appid": e.creds.SubAppID, "out_trade_no": outTradeNo, "out_refund_no": outRefundNo,
		"reason": "商品已售完", "notify_url": notifyURL,
		"amount": map[string]any{"refund": amount, "total": 10000, "currency": "HKD"},
	}
}

// createdAnswer is the refund answer with the raw body, to see which fields are there.
type createdAnswer struct {
	sandbox.RefundCreated
	raw map[string]any
}

// refund posts a refund through the SDK (whose validator checks the answer's signature).
func (e *env) refund(t *testing.T, body map[string]any) (createdAnswer, error) {
	t.Helper()
	res, err := e.client.Post(context.Background(), e.apiURL+refundsV3, body)
	if err != nil {
		return createdAnswer{}, err
	}
	raw, err := io.ReadAll(res.Response.Body)
	if err != nil {
		t.Fatal(err)
	}
	var a createdAnswer
	if err := json.Unmarshal(raw, &a.RefundCreated); err != nil {
		t.Fatalf("refund answer: %v", err)
	}
	if err := json.Unmarshal(raw, &a.raw); err != nil {
		t.Fatalf("refund answer: %v", err)
	}
	return a, nil
}

// refundSpaced refunds, waiting out the one-minute spacing (scaled: milliseconds) of one
// order's refunds.
func (e *env) refundSpaced(t *testing.T, body map[string]any) (createdAnswer, error) {
	t.Helper()
	for range 100 {
		a, err := e.refund(t, body)
		var apiErr *core.APIError
		if errors.As(err, &apiErr) && apiErr.Code == sandbox.CodeFrequencyLimited {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		return a, err
	}
	t.Fatalf("refund %v: always FREQUENCY_LIMITED", body["out_refund_no"])
	return createdAnswer{}, nil
}

// mustRefund refunds (see refundSpaced) and fails the test on any error.
func (e *env) mustRefund(t *testing.T, body map[string]any) createdAnswer {
	t.Helper()
	a, err := e.refundSpaced(t, body)
	if err != nil {
		t.Fatalf("refund %v: %v", body["out_refund_no"], err)
	}
	return a
}

// queryRefund queries a refund; path is relative to the refunds API, without the query.
func (e *env) queryRefund(t *testing.T, path string) (sandbox.RefundQueried, error) {
	t.Helper()
	res, err := e.client.Get(context.Background(), e.apiURL+refundsV3+path+"?sp_mchid="+e.creds.MchID+"&sub_mchid="+e.creds.SubMchID)
	if err != nil {
		return sandbox.RefundQueried{}, err
	}
	var r sandbox.RefundQueried
	if err := core.UnMarshalResponse(res.Response, &r); err != nil {
		t.Fatalf("refund query answer: %v", err)
	}
	return r, nil
}

func (e *env) mustQueryRefund(t *testing.T, path string) sandbox.RefundQueried {
	t.Helper()
	r, err := e.queryRefund(t, path)
	if err != nil {
		t.Fatalf("query refund %s: %v", path, err)
	}
	return r
}

// paidOrder signs a contract for openid (configured with cfg) and deducts 100.00 HKD.
func (e *env) paidOrder(t *testing.T, code, openid, outTradeNo string, cfg sandbox.PayerConfig) sandbox.TransactionResource {
	t.Helper()
	c := e.signedContract(t, code, openid, e.sinkURL)
	e.configure(t, openid, cfg)
	return e.mustDeduct(t, e.deductBody(c.ContractID, outTradeNo, e.sinkURL))
}

// ledgerRefund returns the refund ledger entry of outRefundNo, which must exist.
func (e *env) ledgerRefund(t *testing.T, outRefundNo string) sandbox.Refund {
	t.Helper()
	r, ok := e.sb.Refund(e.creds.SubMchID, outRefundNo)
	if !ok {
		t.Fatalf("refund %s not in the ledger", outRefundNo)
	}
	return r
}

// refundNotice waits for the next notification at rcv and checks it is a refund one.
func refundNotice(t *testing.T, rcv *receiver, eventType string) map[string]any {
	t.Helper()
	n := rcv.next(t)
	if n.req.EventType != eventType || n.req.Resource.OriginalType != sandbox.OriginalTypeRefund ||
		n.req.Resource.AssociatedData != sandbox.AssociatedDataRefund {
		t.Fatalf("notification %s (%s/%s), want %s", n.req.EventType, n.req.Resource.OriginalType,
			n.req.Resource.AssociatedData, eventType)
	}
	return n.content
}
