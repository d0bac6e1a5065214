package wechat

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/papayd/papayd/internal/service"
)

// fullRefundRequest sets every field; it names the order by transaction id.
func fullRefundRequest() service.RefundRequest {
	return service.RefundRequest{
		Merchant: testMerchant, TransactionID: "4200001136202112092809736426", OutTradeNo: "1217752501201407033233368018",
		OutRefundNo: "R-1|a*b@c", Reason: "商品已售完 & <退款>", Refund: 2500, Total: 10000, Currency: "HKD",
		NotifyURL: "https://example.com/papay/refunds?x=1&y=2",
	}
}

// refundCreateJSON is a create answer as documented: no status, no order,
// and fields papayd does not know.
const refundCreateJSON = `{"id":"50000000382019052709732678859","out_refund_no":"R-1|a*b@c",
 "create_time":"2019-05-27T10:47:08+08:00",
 "amount":{"refund":2500,"currency":"HKD","payer_refund":2191,"payer_currency":"CNY",
   "exchange_rate":{"type":"SETTLEMENT_RATE","rate":87650000}},
 "detail":[{"promotion_id":"1","scope":"SINGLE","type":"DISCOUNT","amount":5,"refund_amount":1,"currency":"HKD"}]}`

// refundQueryJSON is a query answer with every documented field.
const refundQueryJSON = `{"id":"50000000382019052709732678859","out_refund_no":"R-1|a*b@c",
 "transaction_id":"4200001136202112092809736426","out_trade_no":"1217752501201407033233368018",
 "channel":"ORIGINAL","recv_account":"支付用户零钱","fund_source":"REFUND_SOURCE_UNSETTLED_FUNDS",
 "success_time":"2019-05-27T10:49:08+08:00","create_time":"2019-05-27T10:47:08+08:00","status":"SUCCESS",
 "amount":{"refund":2500,"total":10000,"currency":"HKD","payer_refund":2191,"payer_total":8765,"payer_currency":"CNY",
   "exchange_rate":{"type":"SETTLEMENT_RATE","rate":87650000}}}`

var cst = time.FixedZone("", 8*3600)

var refundCreated = service.RemoteRefund{
	SpMchID: testMchID, SubMchID: "10000097", RefundID: "50000000382019052709732678859", OutRefundNo: "R-1|a*b@c",
	TransactionID: "4200001136202112092809736426", OutTradeNo: "1217752501201407033233368018",
	CreateTime: time.Date(2019, 5, 27, 10, 47, 8, 0, cst), Refund: 2500, Currency: "HKD",
	PayerRefund: 2191, PayerCurrency: "CNY", ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 87650000},
}

var refundQueried = service.RemoteRefund{
	SpMchID: testMchID, SubMchID: "10000097", RefundID: "50000000382019052709732678859", OutRefundNo: "R-1|a*b@c",
	TransactionID: "4200001136202112092809736426", OutTradeNo: "1217752501201407033233368018",
	Status: "SUCCESS", Channel: "ORIGINAL", RecvAccount: "支付用户零钱", FundSource: "REFUND_SOURCE_UNSETTLED_FUNDS",
	SuccessTime: time.Date(2019, 5, 27, 10, 49, 8, 0, cst), CreateTime: time.Date(2019, 5, 27, 10, 47, 8, 0, cst),
	Refund: 2500, Total: 10000, Currency: "HKD", PayerRefund: 2191, PayerTotal: 8765, PayerCurrency: "CNY",
	ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 87650000},
}

func TestCreateRefund(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: refundCreateJSON} })
	c, rec := newTestClient(t, f, nil)
	got, err := c.CreateRefund(context.Background(), fullRefundRequest())
	if err != nil {
		t.Fatalf("CreateRefund: %v", err)
	}
	if diff := cmp.Diff(refundCreated, got, timeEqual); diff != "" {
		t.Errorf("refund (-want +got):\n%s", diff)
	}
	r := f.requests()[0]
	if r.Method != http.MethodPost || r.Path != "/v3/global/refunds" || r.RawQuery != "" {
		t.Errorf("request %s %s?%s, want POST /v3/global/refunds", r.Method, r.Path, r.RawQuery)
	}
	// transaction_id only (WeChat's advice), sp_mchid in the body, no HTML
	// escaping.
	want := `{"sp_mchid":"1900000109","sub_mchid":"10000097","sp_appid":"wxcbda96de0b165486","sub_appid":"wxcbda96de0b165484",` +
		`"transaction_id":"4200001136202112092809736426","out_refund_no":"R-1|a*b@c","reason":"商品已售完 & <退款>",` +
		`"amount":{"refund":2500,"total":10000,"currency":"HKD"},"notify_url":"https://example.com/papay/refunds?x=1&y=2"}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	wantCalls := []service.WeChatCall{{Method: "POST", Path: "/v3/global/refunds", HTTPStatus: 200, RequestID: "REQ-1", Time: testNow}}
	if diff := cmp.Diff(wantCalls, rec.recorded()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestCreateRefundByOutTradeNo(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 200, Body: `{"id":"5001","out_refund_no":"R2","status":"PROCESSING","amount":{"refund":"1","currency":"JPY"}}`}
	})
	c, _ := newTestClient(t, f, nil)
	got, err := c.CreateRefund(context.Background(), service.RefundRequest{
		Merchant: service.Merchant{SubMchID: "10000097", SPAppID: "wxsp"}, OutTradeNo: "T1", OutRefundNo: "R2",
		Refund: 1, Total: 3, Currency: "JPY",
	})
	if err != nil {
		t.Fatalf("CreateRefund: %v", err)
	}
	want := `{"sp_mchid":"1900000109","sub_mchid":"10000097","sp_appid":"wxsp","out_trade_no":"T1","out_refund_no":"R2",` +
		`"amount":{"refund":1,"total":3,"currency":"JPY"}}`
	if body := string(f.requests()[0].Body); body != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	wantRefund := service.RemoteRefund{SpMchID: testMchID, SubMchID: "10000097", RefundID: "5001", OutRefundNo: "R2",
		OutTradeNo: "T1", Status: "PROCESSING", Refund: 1, Currency: "JPY"}
	if diff := cmp.Diff(wantRefund, got); diff != "" {
		t.Errorf("refund (-want +got):\n%s", diff)
	}
}

func TestCreateRefundRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		want   service.RemoteError
		retry  bool // retried by the client
	}{
		{403, `{"code":"NOT_ENOUGH","message":"基本账户余额不足"}`, service.RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH", Message: "基本账户余额不足"}, false},
		{400, `{"code":"OUT_REFUND_NO_USED","message":"used"}`, service.RemoteError{HTTPStatus: 400, Code: "OUT_REFUND_NO_USED", Message: "used"}, false},
		{400, `{"code":"INVALID_REQUEST","message":"refund amount exceeds"}`, service.RemoteError{HTTPStatus: 400, Code: "INVALID_REQUEST", Message: "refund amount exceeds"}, false},
		{403, `{"code":"USER_ACCOUNT_ABNORMAL","message":"m"}`, service.RemoteError{HTTPStatus: 403, Code: "USER_ACCOUNT_ABNORMAL", Message: "m"}, false},
		{400, `{"code":"PARAM_ERROR","message":"bad","detail":{"field":"/amount/total","location":"body"}}`,
			service.RemoteError{HTTPStatus: 400, Code: "PARAM_ERROR", Message: "bad", Field: "amount/total"}, false},
		{404, `{"code":"RESOURCE_NOT_EXISTS","message":"订单不存在"}`, service.RemoteError{HTTPStatus: 404, Code: "RESOURCE_NOT_EXISTS", Message: "订单不存在"}, false},
		{403, `{"code":"BIZERR_NEED_RETRY","message":"retry"}`, service.RemoteError{HTTPStatus: 403, Code: "BIZERR_NEED_RETRY", Message: "retry"}, true},
		{429, `{"code":"FREQUENCY_LIMITED","message":"slow"}`, service.RemoteError{HTTPStatus: 429, Code: "FREQUENCY_LIMITED", Message: "slow"}, true},
		{500, `{"code":"SYSTEM_ERROR","message":"系统错误"}`, service.RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR", Message: "系统错误"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.want.Code, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: tt.status, Body: tt.body} })
			c, rec := newTestClient(t, f, nil)
			got, err := c.CreateRefund(context.Background(), fullRefundRequest())
			var re *service.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a *service.RemoteError", err)
			}
			if diff := cmp.Diff(tt.want, *re, cmpopts.IgnoreFields(service.RemoteError{}, "RequestID")); diff != "" {
				t.Errorf("RemoteError (-want +got):\n%s", diff)
			}
			if errors.Is(err, service.ErrWeChatUnavailable) {
				t.Error("a WeChat answer wraps ErrWeChatUnavailable")
			}
			if got != (service.RemoteRefund{}) {
				t.Errorf("a refund with the error: %+v", got)
			}
			attempts := 1
			if tt.retry {
				attempts = testAttempts
			}
			if n := len(rec.recorded()); n != attempts {
				t.Errorf("%d attempts, want %d", n, attempts)
			}
			for _, r := range f.requests() {
				if string(r.Body) != string(f.requests()[0].Body) {
					t.Error("a retry sent another body")
				}
			}
		})
	}
}

// TestCreateRefundUnknownOutcome: whatever leaves the refund's outcome
// unknown wraps ErrWeChatUnavailable and is never a refusal.
func TestCreateRefundUnknownOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer fakeAnswer
	}{
		{"timeout", fakeAnswer{Status: 200, Body: refundCreateJSON, Delay: 5 * time.Second}},
		{"connection reset", fakeAnswer{Reset: true}},
		{"unsigned 200", fakeAnswer{Status: 200, Sign: signNone, Body: refundCreateJSON}},
		{"forged 200", fakeAnswer{Status: 200, Sign: signForged, Body: refundCreateJSON}},
		{"200 not JSON", fakeAnswer{Status: 200, Body: `<html>`}},
		{"200 null", fakeAnswer{Status: 200, Body: `null`}},
		{"200 float amount", fakeAnswer{Status: 200, Body: strings.Replace(refundCreateJSON, `"refund":2500`, `"refund":25.00`, 1)}},
		{"200 numeric id", fakeAnswer{Status: 200, Body: `{"id":5001,"out_refund_no":"R-1|a*b@c"}`}},
		{"200 about another refund", fakeAnswer{Status: 200, Body: strings.Replace(refundCreateJSON, "R-1|a*b@c", "R-2", 1)}},
		{"200 about another order", fakeAnswer{Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","out_trade_no":"OTHER"}`}},
		{"200 about another sub-merchant", fakeAnswer{Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","sub_mchid":"999"}`}},
		{"200 about another provider", fakeAnswer{Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","sp_mchid":"999"}`}},
		{"202", fakeAnswer{Status: 202}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return tt.answer })
			c, _ := newTestClient(t, f, func(cfg *Config) { cfg.Timeout, cfg.MaxAttempts = 300*time.Millisecond, 1 })
			got, err := c.CreateRefund(context.Background(), fullRefundRequest())
			// A 202 is WeChat's "send it again": a retryable RemoteError.
			if !errors.Is(err, service.ErrWeChatUnavailable) && !retryableRemote(err) {
				t.Fatalf("err %v, want an unknown outcome", err)
			}
			var re *service.RemoteError
			if errors.As(err, &re) && !re.Retryable() {
				t.Errorf("an unknown outcome looks like a refusal: %+v", re)
			}
			if got != (service.RemoteRefund{}) {
				t.Errorf("a refund with the error: %+v", got)
			}
		})
	}
}

// TestCreateRefundRefusalAfterUnknownOutcome: a refusal answering a resend
// after a lost answer may be about the first attempt's success.
func TestCreateRefundRefusalAfterUnknownOutcome(t *testing.T) {
	t.Parallel()
	used := fakeAnswer{Status: 400, Body: `{"code":"INVALID_REQUEST","message":"refund amount exceeds"}`}
	f := newFakeWeChat(t, sequence(fakeAnswer{Reset: true}, used))
	c, rec := newTestClient(t, f, nil)
	_, err := c.CreateRefund(context.Background(), fullRefundRequest())
	var re *service.RemoteError
	if errors.As(err, &re) || !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Fatalf("err %v, want ErrWeChatUnavailable and no RemoteError", err)
	}
	if n := len(rec.recorded()); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
	reqs := f.requests()
	if len(reqs) != 2 || string(reqs[0].Body) != string(reqs[1].Body) {
		t.Errorf("the resend differs from the first attempt: %d requests", len(reqs))
	}
	// A lost answer, then the refund: the same refund, once.
	f = newFakeWeChat(t, sequence(fakeAnswer{Reset: true}, fakeAnswer{Status: 200, Body: refundCreateJSON}))
	c, _ = newTestClient(t, f, nil)
	got, err := c.CreateRefund(context.Background(), fullRefundRequest())
	if err != nil || got.RefundID != refundCreated.RefundID {
		t.Errorf("after a lost answer: %+v, %v", got, err)
	}
}

func TestQueryRefund(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		q         service.RefundQuery
		wantPath  string
		wantQuery string
	}{
		{"by refund id", service.RefundQuery{SubMchID: "10000097", RefundID: "50000000382019052709732678859", OutRefundNo: "ignored"},
			"/v3/global/refunds/id/50000000382019052709732678859", "sp_mchid=1900000109&sub_mchid=10000097"},
		{"by out_refund_no", service.RefundQuery{SubMchID: "10000097", OutRefundNo: "R-1|a*b@c"},
			"/v3/global/refunds/out-refund-no/R-1%7Ca%2Ab@c", "sp_mchid=1900000109&sub_mchid=10000097"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: refundQueryJSON} })
			c, rec := newTestClient(t, f, nil)
			got, err := c.QueryRefund(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("QueryRefund: %v", err)
			}
			if diff := cmp.Diff(refundQueried, got, timeEqual); diff != "" {
				t.Errorf("refund (-want +got):\n%s", diff)
			}
			r := f.requests()[0]
			if r.Method != http.MethodGet || r.Path != tt.wantPath || r.RawQuery != tt.wantQuery || len(r.Body) != 0 {
				t.Errorf("request %s %s?%s %q, want GET %s?%s", r.Method, r.Path, r.RawQuery, r.Body, tt.wantPath, tt.wantQuery)
			}
			if calls := rec.recorded(); len(calls) != 1 || calls[0].Method != "GET" || !strings.HasPrefix(calls[0].Path, "/v3/global/refunds/") {
				t.Errorf("audit %+v", calls)
			}
		})
	}
}

// TestQueryRefundStatuses: every spelling of the status is kept as given.
func TestQueryRefundStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []string{"SUCCESS", "PROCESSING", "ABNORMAL", "CLOSED", "REFUNDCLOSE", "SOMETHING_NEW"} {
		f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
			return fakeAnswer{Status: 200, Body: `{"id":"5","out_refund_no":"R","status":"` + status + `","amount":{"refund":1,"total":"2","currency":"HKD","exchange_rate":100000000}}`}
		})
		c, _ := newTestClient(t, f, nil)
		got, err := c.QueryRefund(context.Background(), service.RefundQuery{SubMchID: "10000097", OutRefundNo: "R"})
		if err != nil {
			t.Fatalf("%s: %v", status, err)
		}
		want := service.RemoteRefund{SpMchID: testMchID, SubMchID: "10000097", RefundID: "5", OutRefundNo: "R", Status: status,
			Refund: 1, Total: 2, Currency: "HKD", ExchangeRate: service.ExchangeRate{Rate: 100000000}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", status, diff)
		}
	}
}

func TestQueryRefundErrors(t *testing.T) {
	t.Parallel()
	q := service.RefundQuery{SubMchID: "10000097", OutRefundNo: "R-1|a*b@c"}
	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
			return fakeAnswer{Status: 404, Body: `{"code":"RESOURCE_NOT_EXISTS","message":"退款单不存在"}`}
		})
		c, rec := newTestClient(t, f, nil)
		_, err := c.QueryRefund(context.Background(), q)
		var re *service.RemoteError
		if !errors.As(err, &re) || !re.NotFound() || re.Code != "RESOURCE_NOT_EXISTS" {
			t.Fatalf("err %v, want a RemoteError whose NotFound() is true", err)
		}
		if n := len(rec.recorded()); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	for name, answer := range map[string]fakeAnswer{
		"no status":        {Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c"}`},
		"another refund":   {Status: 200, Body: strings.Replace(refundQueryJSON, "R-1|a*b@c", "R-9", 1)},
		"another merchant": {Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","status":"SUCCESS","sub_mchid":"1"}`},
		"status a number":  {Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","status":1}`},
		"rate not a rate":  {Status: 200, Body: `{"id":"5","out_refund_no":"R-1|a*b@c","status":"SUCCESS","amount":{"exchange_rate":[1]}}`},
		"unverifiable":     {Status: 200, Sign: signForged, Body: refundQueryJSON},
		"server error":     {Status: 500, Body: `{"code":"SYSTEM_ERROR","message":"m"}`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return answer })
			c, _ := newTestClient(t, f, func(cfg *Config) { cfg.MaxAttempts = 1 })
			got, err := c.QueryRefund(context.Background(), q)
			if !errors.Is(err, service.ErrWeChatUnavailable) && !retryableRemote(err) {
				t.Fatalf("err %v, want an unknown outcome", err)
			}
			if got != (service.RemoteRefund{}) {
				t.Errorf("a refund with the error: %+v", got)
			}
		})
	}
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: refundQueryJSON} })
		c, _ := newTestClient(t, f, nil)
		for _, bad := range []service.RefundQuery{{SubMchID: "1"}, {SubMchID: "1", RefundID: ".."}, {SubMchID: "1", OutRefundNo: "."}} {
			if _, err := c.QueryRefund(context.Background(), bad); err == nil {
				t.Errorf("%+v accepted", bad)
			}
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("%d calls for queries that name no refund", n)
		}
	})
}

// retryableRemote reports whether err is a WeChat answer asking for a retry.
func retryableRemote(err error) bool {
	var re *service.RemoteError
	return errors.As(err, &re) && re.Retryable()
}

// TestRefundQueriesHaveTheirOwnLimit: optional refund queries beyond
// RefundQueryLimit are refused without a call; the order queries keep
// their own bucket.
func TestRefundQueriesHaveTheirOwnLimit(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(r gotRequest) fakeAnswer {
		if strings.HasPrefix(r.Path, refundsPath) {
			return fakeAnswer{Status: 200, Body: refundQueryJSON}
		}
		return fakeAnswer{Status: 200, Body: fullTransactionJSON}
	})
	c, _ := newTestClient(t, f, func(cfg *Config) { cfg.RefundQueryLimit = Limit{PerSecond: 1, Burst: 1} })
	opt := service.WithOptionalCall(context.Background())
	q := service.RefundQuery{SubMchID: "10000097", OutRefundNo: "R-1|a*b@c"}
	refused := 0
	for range 5 {
		_, err := c.QueryRefund(opt, q)
		switch {
		case errors.Is(err, service.ErrRateLimited):
			refused++
		case err != nil:
			t.Fatalf("query: %v", err)
		}
	}
	if refused < 3 {
		t.Errorf("5 quick optional refund queries at 1/s burst 1: %d refused, want at least 3", refused)
	}
	if _, err := c.QueryTransaction(opt, limitQuery); err != nil {
		t.Errorf("the order query is limited by the refund queries: %v", err)
	}
	if _, err := NewClient(Config{BaseURL: f.srv.URL, MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey,
		PlatformCerts: []*x509.Certificate{platformCert}, RefundQueryLimit: Limit{Burst: -1}}, &fakeRecorder{}, nil); err == nil {
		t.Error("NewClient accepted RefundQueryLimit with a negative burst")
	}
}
