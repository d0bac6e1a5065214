package sandbox_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const transactionsV3 = "/v3/global/papay/transactions"

// deductBody is a valid institutional deduction body of 100.00 HKD.
func (e *env) deductBody(contractID, outTradeNo, notifyURL string) map[string]any {
	return map[string]any{
		"sp_appid": e.creds.SPAppID, "sub_mchid": e.creds.SubMchID, "sub_appid": e.creds.SubAppID,
		"description": "Papaya Club - monthly plan", "notify_url": notifyURL,
		"out_trade_no": outTradeNo, "merchant_category_code": "5968", "contract_id": contractID,
		"amount": map[string]any{"total": 10000, "currency": "HKD"},
	}
}

// deductWith posts a deduction through client and decodes the transaction object.
func (e *env) deductWith(t *testing.T, client *core.Client, body map[string]any) (sandbox.TransactionResource, error) {
	t.Helper()
	res, err := client.Post(context.Background(), e.apiURL+transactionsV3, body)
	if err != nil {
		return sandbox.TransactionResource{}, err
	}
	var tx sandbox.TransactionResource
	if err := core.UnMarshalResponse(res.Response, &tx); err != nil {
		t.Fatalf("deduction response: %v", err)
	}
	return tx, nil
}

func (e *env) deduct(t *testing.T, body map[string]any) (sandbox.TransactionResource, error) {
	t.Helper()
	return e.deductWith(t, e.client, body)
}

// mustDeduct deducts and fails the test on any error.
func (e *env) mustDeduct(t *testing.T, body map[string]any) sandbox.TransactionResource {
	t.Helper()
	tx, err := e.deduct(t, body)
	if err != nil {
		t.Fatalf("deduct %v: %v", body["out_trade_no"], err)
	}
	return tx
}

// queryTx queries an order; path is relative to the transactions API and carries the query.
func (e *env) queryTx(t *testing.T, path string) (sandbox.TransactionResource, error) {
	t.Helper()
	res, err := e.client.Get(context.Background(), e.apiURL+transactionsV3+path)
	if err != nil {
		return sandbox.TransactionResource{}, err
	}
	var tx sandbox.TransactionResource
	if err := core.UnMarshalResponse(res.Response, &tx); err != nil {
		t.Fatalf("query response: %v", err)
	}
	return tx, nil
}

// queryByNo queries an order by out_trade_no for the default sub-merchant.
func (e *env) queryByNo(t *testing.T, outTradeNo string) sandbox.TransactionResource {
	t.Helper()
	tx, err := e.queryTx(t, "/out-trade-no/"+outTradeNo+"?sub_mchid="+e.creds.SubMchID)
	if err != nil {
		t.Fatalf("query %s: %v", outTradeNo, err)
	}
	return tx
}

// reverse reverses an order with sub_mchid in the body; it returns the SDK error.
func (e *env) reverse(t *testing.T, outTradeNo string) error {
	t.Helper()
	res, err := e.client.Post(context.Background(), e.apiURL+transactionsV3+"/out-trade-no/"+outTradeNo+"/reverse",
		map[string]string{"sub_mchid": e.creds.SubMchID})
	if err == nil && (res.Response.StatusCode != http.StatusNoContent || res.Response.ContentLength > 0) {
		t.Fatalf("reverse %s: status %d, length %d; want an empty 204", outTradeNo,
			res.Response.StatusCode, res.Response.ContentLength)
	}
	return err
}

// configure sets a payer scenario through the Go API.
func (e *env) configure(t *testing.T, openID string, cfg sandbox.PayerConfig) {
	t.Helper()
	if _, err := e.sb.ConfigurePayer(openID, cfg); err != nil {
		t.Fatalf("ConfigurePayer: %v", err)
	}
}

// transactionDeliveries returns the TRANSACTION.SUCCESS attempts of the log.
func (e *env) transactionDeliveries() []sandbox.Delivery {
	var out []sandbox.Delivery
	for _, d := range e.sb.Deliveries() {
		if d.EventType == sandbox.EventTransactionSuccess {
			out = append(out, d)
		}
	}
	return out
}

// order returns the ledger entry of outTradeNo, which must exist.
func (e *env) order(t *testing.T, outTradeNo string) sandbox.Order {
	t.Helper()
	o, ok := e.sb.Order(outTradeNo)
	if !ok {
		t.Fatalf("order %s not in the ledger", outTradeNo)
	}
	return o
}

func ptr[T any](v T) *T { return &v }
