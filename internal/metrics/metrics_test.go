package metrics

import "testing"

func TestEndpointTemplates(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v3/global/papay/contracts/miniprogram-pre-entrust-sign": "/v3/global/papay/contracts/miniprogram-pre-entrust-sign",
		"/v3/global/papay/contracts/web-pre-entrust-sign":         "/v3/global/papay/contracts/web-pre-entrust-sign",
		"/v3/global/papay/contracts/Wx123":                        "/v3/global/papay/contracts/{contract_id}",
		"/v3/global/papay/contracts/Wx123/terminate":              "/v3/global/papay/contracts/{contract_id}/terminate",
		"/v3/global/papay/contracts/out-contract-code/PA1":        "/v3/global/papay/contracts/out-contract-code/{out_contract_code}",
		"/v3/global/papay/transactions":                           "/v3/global/papay/transactions",
		"/v3/global/papay/transactions/4200001":                   "/v3/global/papay/transactions/{transaction_id}",
		"/v3/global/papay/transactions/out-trade-no/T1":           "/v3/global/papay/transactions/out-trade-no/{out_trade_no}",
		"/v3/global/papay/transactions/out-trade-no/T1/reverse":   "/v3/global/papay/transactions/out-trade-no/{out_trade_no}/reverse",
		"/v3/global/certificates":                                 "/v3/global/certificates",
		"/v3/refund/domestic/refunds/123":                         "other",
	} {
		if got := endpointOf(path); got != want {
			t.Errorf("endpointOf(%s) = %s, want %s", path, got, want)
		}
	}
}
