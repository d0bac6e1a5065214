package wechat

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/papayd/papayd/internal/service"
)

// fullTransactionRequest sets every field, optional ones included.
func fullTransactionRequest() service.TransactionRequest {
	return service.TransactionRequest{
		Merchant: testMerchant, OutTradeNo: "1217752501201407033233368018", ContractID: "Wx15463511252015071056489715",
		Amount: service.Money{Total: 10000, Currency: "HKD"}, Description: "PAP Auto-debit <test> & co", Attach: "test",
		GoodsTag: "WXG", MerchantCategoryCode: "1011", NotifyURL: "https://example.com/papay/notify",
		SceneInfo: service.SceneInfo{DeviceID: "013467007045764", DeviceIP: "59.37.125.32"},
	}
}

// fullTransactionJSON is a transaction object with every field, the
// pre-2025 "id", the generic "wechatpay_contribute_amount" on one
// promotion, and fields papayd does not know.
const fullTransactionJSON = `{"sp_mchid":"132012662","sub_mchid":"10000097","sp_appid":"wx7bc98d929da735fe",
 "sub_appid":"wxcbda96de0b165484","out_trade_no":"1217752501201407033233368018","id":"4200001136202112092809736426",
 "contract_id":"Wx15463511252015071056489715","trade_type":"AUTH","trade_state":"SUCCESS","trade_state_desc":"支付成功",
 "bank_type":"CFT","attach":"test","success_time":"2021-12-09T10:56:27+08:00","merchant_category_code":"1011",
 "payer":{"sp_openid":"of8YZ6A_ySrPYzjX7joXo_h2CI44","sub_openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
 "amount":{"total":10000,"currency":"HKD","payer_total":8765,"payer_currency":"CNY",
   "exchange_rate":{"type":"USERPAYMENT_RATE","rate":87650000}},
 "promotion_detail":[
   {"promotion_id":"109519","name":"单品惠-6","scope":"SINGLE","type":"DISCOUNT","amount":500,"currency":"HKD",
    "activity_id":"931386","wxpay_contribute_amount":100,"merchant_contribute_amount":300,"other_contribute_amount":100,
    "goods_detail":[{"goods_id":"M1006","goods_remark":"商品备注","discount_amount":500,"quantity":1,"price":10000},
                    {"goods_id":"M1007","discount_amount":0,"quantity":2,"price":0}]},
   {"promotion_id":"109520","scope":"GLOBAL","type":"COUPON","amount":1,"currency":"HKD","wechatpay_contribute_amount":1}],
 "scene_info":{"device_id":"013467007045764"},"future_field":{"nested":[1,2.5,"x"]}}`

var fullTransaction = service.RemoteTransaction{
	SubMchID: "10000097", OutTradeNo: "1217752501201407033233368018", TransactionID: "4200001136202112092809736426",
	ContractID: "Wx15463511252015071056489715", TradeType: "AUTH", TradeState: "SUCCESS", TradeStateDesc: "支付成功",
	BankType: "CFT", Attach: "test", SuccessTime: time.Date(2021, 12, 9, 10, 56, 27, 0, time.FixedZone("", 8*3600)),
	MerchantCategoryCode: "1011", Amount: service.Money{Total: 10000, Currency: "HKD"}, PayerTotal: 8765, PayerCurrency: "CNY",
	ExchangeRate: service.ExchangeRate{Type: "USERPAYMENT_RATE", Rate: 87650000},
	SPOpenID:     "of8YZ6A_ySrPYzjX7joXo_h2CI44", SubOpenID: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
	PromotionDetail: []service.PromotionDetail{
		{PromotionID: "109519", Name: "单品惠-6", Scope: "SINGLE", Type: "DISCOUNT", Amount: 500, Currency: "HKD",
			ActivityID: "931386", WxpayContributeAmount: 100, MerchantContributeAmount: 300, OtherContributeAmount: 100,
			GoodsDetail: []service.GoodsDetail{
				{GoodsID: "M1006", GoodsRemark: "商品备注", DiscountAmount: 500, Quantity: 1, Price: 10000},
				{GoodsID: "M1007", Quantity: 2},
			}},
		{PromotionID: "109520", Scope: "GLOBAL", Type: "COUPON", Amount: 1, Currency: "HKD", WxpayContributeAmount: 1},
	},
}

// timeEqual compares instants, not locations.
var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestCreateTransaction(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: fullTransactionJSON} })
	c, rec := newTestClient(t, f, nil)
	got, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
	if err != nil {
		t.Fatalf("CreateTransaction: %v", err)
	}
	if diff := cmp.Diff(fullTransaction, got, timeEqual); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}
	r := f.requests()[0]
	if r.Method != http.MethodPost || r.Path != "/v3/global/papay/transactions" || r.RawQuery != "" {
		t.Errorf("request %s %s?%s, want POST /v3/global/papay/transactions", r.Method, r.Path, r.RawQuery)
	}
	want := `{"sp_appid":"wxcbda96de0b165486","sub_mchid":"10000097","sub_appid":"wxcbda96de0b165484",` +
		`"description":"PAP Auto-debit <test> & co","attach":"test","notify_url":"https://example.com/papay/notify",` +
		`"out_trade_no":"1217752501201407033233368018","goods_tag":"WXG","merchant_category_code":"1011",` +
		`"contract_id":"Wx15463511252015071056489715","amount":{"total":10000,"currency":"HKD"},` +
		`"scene_info":{"device_id":"013467007045764","device_ip":"59.37.125.32"}}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	wantCalls := []service.WeChatCall{{Method: "POST", Path: "/v3/global/papay/transactions", HTTPStatus: 200, RequestID: "REQ-1", Time: testNow}}
	if diff := cmp.Diff(wantCalls, rec.recorded()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestCreateTransactionOmitsEmptyOptionalFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		scene service.SceneInfo
		want  string
	}{
		{"no scene", service.SceneInfo{},
			`{"sp_appid":"wxsp","sub_mchid":"10000097","description":"d","notify_url":"https://n","out_trade_no":"T1",` +
				`"merchant_category_code":"4111","contract_id":"C1","amount":{"total":1,"currency":"JPY"}}`},
		{"device ip only", service.SceneInfo{DeviceIP: "10.0.0.1"},
			`{"sp_appid":"wxsp","sub_mchid":"10000097","description":"d","notify_url":"https://n","out_trade_no":"T1",` +
				`"merchant_category_code":"4111","contract_id":"C1","amount":{"total":1,"currency":"JPY"},"scene_info":{"device_ip":"10.0.0.1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
				return fakeAnswer{Status: 200, Body: `{"out_trade_no":"T1","transaction_id":"42","trade_state":"SUCCESS"}`}
			})
			c, _ := newTestClient(t, f, nil)
			_, err := c.CreateTransaction(context.Background(), service.TransactionRequest{
				Merchant: service.Merchant{SubMchID: "10000097", SPAppID: "wxsp"}, OutTradeNo: "T1", ContractID: "C1",
				Amount: service.Money{Total: 1, Currency: "JPY"}, Description: "d", MerchantCategoryCode: "4111",
				NotifyURL: "https://n", SceneInfo: tt.scene,
			})
			if err != nil {
				t.Fatalf("CreateTransaction: %v", err)
			}
			if got := string(f.requests()[0].Body); got != tt.want {
				t.Errorf("body\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCreateTransactionRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		want   service.RemoteError
		retry  bool
	}{
		{403, `{"code":"NOT_ENOUGH","message":"余额不足"}`, service.RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH", Message: "余额不足"}, false},
		{403, `{"code":"NO_AUTH","message":"no permission"}`, service.RemoteError{HTTPStatus: 403, Code: "NO_AUTH", Message: "no permission"}, false},
		{403, `{"code":"CONTRACT_NOT_EXIST","message":"terminated"}`, service.RemoteError{HTTPStatus: 403, Code: "CONTRACT_NOT_EXIST", Message: "terminated"}, false},
		{400, `{"code":"OUT_TRADE_NO_USED","message":"used"}`, service.RemoteError{HTTPStatus: 400, Code: "OUT_TRADE_NO_USED", Message: "used"}, false},
		{400, `{"code":"PARAM_ERROR","message":"bad","detail":{"field":"/amount/currency","location":"body"}}`,
			service.RemoteError{HTTPStatus: 400, Code: "PARAM_ERROR", Message: "bad", Field: "amount/currency"}, false},
		{429, `{"code":"FREQUENCY_LIMITED","message":"slow"}`, service.RemoteError{HTTPStatus: 429, Code: "FREQUENCY_LIMITED", Message: "slow"}, true},
		{500, `{"code":"SYSTEM_ERROR","message":"系统错误"}`, service.RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR", Message: "系统错误"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.want.Code, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: tt.status, Body: tt.body} })
			c, rec := newTestClient(t, f, nil)
			_, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
			var re *service.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a *service.RemoteError", err)
			}
			if diff := cmp.Diff(tt.want, *re, cmpopts.IgnoreFields(service.RemoteError{}, "RequestID")); diff != "" {
				t.Errorf("RemoteError (-want +got):\n%s", diff)
			}
			if re.Retryable() != tt.retry {
				t.Errorf("Retryable %v, want %v", re.Retryable(), tt.retry)
			}
			if errors.Is(err, service.ErrWeChatUnavailable) {
				t.Error("a WeChat answer wraps ErrWeChatUnavailable")
			}
			calls, attempts := rec.recorded(), 1
			if tt.retry {
				attempts = testAttempts
			}
			if len(calls) != attempts {
				t.Errorf("%d records, want %d", len(calls), attempts)
			}
			for _, call := range calls {
				if call.Code != tt.want.Code || call.HTTPStatus != tt.status || call.Error != "" {
					t.Errorf("audit %+v", call)
				}
			}
		})
	}
}

// TestCreateTransactionUnknownOutcome: whatever leaves the deduction's
// outcome unknown wraps ErrWeChatUnavailable and is never a refusal.
func TestCreateTransactionUnknownOutcome(t *testing.T) {
	t.Parallel()
	ok := `{"out_trade_no":"1217752501201407033233368018","transaction_id":"42","trade_state":"SUCCESS","amount":{"total":10000,"currency":"HKD"}}`
	tests := []struct {
		name       string
		answer     fakeAnswer
		wantStatus int
		extra      error
	}{
		{"timeout", fakeAnswer{Status: 200, Body: ok, Delay: 5 * time.Second}, 0, context.DeadlineExceeded},
		{"unsigned 200", fakeAnswer{Status: 200, Sign: signNone, Body: ok}, 200, nil},
		{"forged 200", fakeAnswer{Status: 200, Sign: signForged, Body: ok}, 200, nil},
		{"200 not JSON", fakeAnswer{Status: 200, Body: `<html>`}, 200, nil},
		{"200 null", fakeAnswer{Status: 200, Body: `null`}, 200, nil},
		{"200 empty body", fakeAnswer{Status: 200}, 200, nil},
		{"200 float amount", fakeAnswer{Status: 200, Body: strings.Replace(ok, "10000", "100.00", 1)}, 200, nil},
		{"200 amount not a number", fakeAnswer{Status: 200, Body: strings.Replace(ok, "10000", `"ten"`, 1)}, 200, nil},
		{"200 without trade_state", fakeAnswer{Status: 200, Body: `{"out_trade_no":"1217752501201407033233368018","transaction_id":"42"}`}, 200, nil},
		{"200 about another order", fakeAnswer{Status: 200, Body: strings.Replace(ok, "1217752501201407033233368018", "OTHER", 1)}, 200, nil},
		{"200 about another sub-merchant", fakeAnswer{Status: 200, Body: `{"sub_mchid":"999","out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS"}`}, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return tt.answer })
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.Timeout, cfg.MaxAttempts = 300*time.Millisecond, 1 })
			got, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
			if !errors.Is(err, service.ErrWeChatUnavailable) {
				t.Fatalf("err %v, want ErrWeChatUnavailable", err)
			}
			var re *service.RemoteError
			if errors.As(err, &re) {
				t.Errorf("an unknown outcome looks like a WeChat answer: %+v", re)
			}
			if tt.extra != nil && !errors.Is(err, tt.extra) {
				t.Errorf("err %v, want it to wrap %v", err, tt.extra)
			}
			if diff := cmp.Diff(service.RemoteTransaction{}, got); diff != "" {
				t.Errorf("a transaction with the error:\n%s", diff)
			}
			if calls := rec.recorded(); len(calls) != 1 || calls[0].HTTPStatus != tt.wantStatus {
				t.Errorf("audit %+v, want one record with status %d", calls, tt.wantStatus)
			}
		})
	}
}

func TestCreateTransactionConnectionRefused(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200} })
	c, rec := newTestClient(t, f, nil)
	f.srv.Close()
	if _, err := c.CreateTransaction(context.Background(), fullTransactionRequest()); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Fatalf("err %v, want ErrWeChatUnavailable", err)
	}
	if calls := rec.recorded(); len(calls) != testAttempts || calls[0].Error == "" || calls[testAttempts-1].Error == "" {
		t.Errorf("audit %+v, want the transport error", calls)
	}
}

func TestQueryTransaction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		q         service.TransactionQuery
		wantPath  string
		wantQuery string
	}{
		{"by transaction id", service.TransactionQuery{SubMchID: "10000097", TransactionID: "4200001136202112092809736426"},
			"/v3/global/papay/transactions/4200001136202112092809736426", "sub_mchid=10000097"},
		{"transaction id wins", service.TransactionQuery{SubMchID: "10000097", TransactionID: "4200001136202112092809736426", OutTradeNo: "1217752501201407033233368018"},
			"/v3/global/papay/transactions/4200001136202112092809736426", "sub_mchid=10000097"},
		{"by out_trade_no", service.TransactionQuery{SubMchID: "10000097", OutTradeNo: "1217752501201407033233368018"},
			"/v3/global/papay/transactions/out-trade-no/1217752501201407033233368018", "sub_mchid=10000097"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: fullTransactionJSON} })
			c, rec := newTestClient(t, f, nil)
			got, err := c.QueryTransaction(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("QueryTransaction: %v", err)
			}
			if diff := cmp.Diff(fullTransaction, got, timeEqual); diff != "" {
				t.Errorf("transaction (-want +got):\n%s", diff)
			}
			r := f.requests()[0]
			if r.Method != http.MethodGet || r.Path != tt.wantPath || r.RawQuery != tt.wantQuery || len(r.Body) != 0 {
				t.Errorf("request %s %s?%s body %q, want GET %s?%s", r.Method, r.Path, r.RawQuery, r.Body, tt.wantPath, tt.wantQuery)
			}
			if calls := rec.recorded(); len(calls) != 1 || calls[0].Path != tt.wantPath || calls[0].HTTPStatus != 200 {
				t.Errorf("audit %+v", calls)
			}
		})
	}
}

func TestQueryTransactionEscapesAndFillsKeys(t *testing.T) {
	t.Parallel()
	// A NOTPAY order: no transaction id, no success_time; amounts as
	// strings; openid (direct-mode naming) only.
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 200, Body: `{"trade_state":"NOTPAY","trade_state_desc":123,"merchant_category_code":0,
			"amount":{"total":"500","currency":"HKD","payer_total":null,"exchange_rate":null},"payer":{"openid":"o-1"},
			"promotion_detail":null,"success_time":""}`}
	})
	c, _ := newTestClient(t, f, nil)
	got, err := c.QueryTransaction(context.Background(), service.TransactionQuery{SubMchID: "1&2", OutTradeNo: "a/b c?"})
	if err != nil {
		t.Fatalf("QueryTransaction: %v", err)
	}
	want := service.RemoteTransaction{SubMchID: "1&2", OutTradeNo: "a/b c?", TradeState: "NOTPAY", TradeStateDesc: "123",
		MerchantCategoryCode: "0", Amount: service.Money{Total: 500, Currency: "HKD"}, SPOpenID: "o-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}
	r := f.requests()[0]
	if want := "/v3/global/papay/transactions/out-trade-no/a%2Fb%20c%3F"; r.Path != want || r.RawQuery != "sub_mchid=1%262" {
		t.Errorf("request %s?%s, want %s?sub_mchid=1%%262", r.Path, r.RawQuery, want)
	}
}

func TestQueryTransactionErrors(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(r gotRequest) fakeAnswer {
		if strings.HasSuffix(r.Path, "/T404") {
			return fakeAnswer{Status: 404, Body: `{"code":"ORDER_NOT_EXIST","message":"order not exist"}`}
		}
		return fakeAnswer{Status: 200, Body: `{"transaction_id":"OTHER","trade_state":"SUCCESS"}`}
	})
	c, rec := newTestClient(t, f, nil)
	ctx := context.Background()
	_, err := c.QueryTransaction(ctx, service.TransactionQuery{SubMchID: "1", OutTradeNo: "T404"})
	var re *service.RemoteError
	if !errors.As(err, &re) || !re.NotFound() || re.Code != "ORDER_NOT_EXIST" {
		t.Errorf("unknown order: err %v, want a NotFound RemoteError", err)
	}
	if _, err := c.QueryTransaction(ctx, service.TransactionQuery{SubMchID: "1", TransactionID: "42"}); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Errorf("answer about another transaction: err %v, want ErrWeChatUnavailable", err)
	}
	for _, q := range []service.TransactionQuery{{SubMchID: "1"}, {SubMchID: "1", OutTradeNo: ".."}, {SubMchID: "1", TransactionID: "."}} {
		if _, err := c.QueryTransaction(ctx, q); err == nil {
			t.Errorf("QueryTransaction(%+v) succeeded", q)
		}
	}
	if n, m := len(f.requests()), len(rec.recorded()); n != 2 || m != 2 {
		t.Errorf("%d requests, %d audit records; want 2 and 2", n, m)
	}
}

func TestReverseTransaction(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: http.StatusNoContent} })
	c, rec := newTestClient(t, f, nil)
	if err := c.ReverseTransaction(context.Background(), "20000100", "1217752501201407033233368018"); err != nil {
		t.Fatalf("ReverseTransaction: %v", err)
	}
	r := f.requests()[0]
	const path = "/v3/global/papay/transactions/out-trade-no/1217752501201407033233368018/reverse"
	if r.Method != http.MethodPost || r.Path != path || r.RawQuery != "" {
		t.Errorf("request %s %s?%s, want POST %s", r.Method, r.Path, r.RawQuery, path)
	}
	if want := `{"sub_mchid":"20000100"}`; string(r.Body) != want {
		t.Errorf("body %s, want %s", r.Body, want)
	}
	want := []service.WeChatCall{{Method: "POST", Path: path, HTTPStatus: 204, RequestID: "REQ-1", Time: testNow}}
	if diff := cmp.Diff(want, rec.recorded()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	if err := c.ReverseTransaction(context.Background(), "1", ".."); err == nil || len(f.requests()) != 1 {
		t.Errorf("reverse of %q: err %v, %d requests", "..", err, len(f.requests()))
	}
}

func TestReverseTransactionRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		code     string
		notFound bool
		retry    bool
	}{
		{400, "ORDER_PAID", false, false},
		{400, "ORDER_CLOSED", false, false},
		{404, "NOT_FOUND", true, false},
		{400, "PARAM_ERROR", false, false},
		{500, "SYSTEM_ERROR", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
				return fakeAnswer{Status: tt.status, Body: `{"code":"` + tt.code + `","message":"m"}`}
			})
			c, rec := newTestClient(t, f, nil)
			err := c.ReverseTransaction(context.Background(), "20000100", "T1")
			var re *service.RemoteError
			if !errors.As(err, &re) || re.Code != tt.code || re.HTTPStatus != tt.status {
				t.Fatalf("err %v, want a RemoteError %d %s", err, tt.status, tt.code)
			}
			if re.NotFound() != tt.notFound || re.Retryable() != tt.retry {
				t.Errorf("NotFound %v Retryable %v, want %v %v", re.NotFound(), re.Retryable(), tt.notFound, tt.retry)
			}
			if errors.Is(err, service.ErrWeChatUnavailable) {
				t.Error("a WeChat answer wraps ErrWeChatUnavailable")
			}
			calls, attempts := rec.recorded(), 1
			if tt.retry {
				attempts = testAttempts
			}
			if len(calls) != attempts {
				t.Errorf("%d records, want %d", len(calls), attempts)
			}
			for _, call := range calls {
				if call.Code != tt.code || call.HTTPStatus != tt.status {
					t.Errorf("audit %+v", call)
				}
			}
		})
	}
}

func TestReverseTransactionTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Delay: 5 * time.Second} })
	c, rec := newTestClient(t, f, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
	err := c.ReverseTransaction(context.Background(), "1", "T1")
	if !errors.Is(err, service.ErrWeChatUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrWeChatUnavailable wrapping the deadline", err)
	}
	if calls := rec.recorded(); len(calls) != 1 || calls[0].Error == "" {
		t.Errorf("audit %+v", calls)
	}
}

func TestTransactionAudit(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(r gotRequest) fakeAnswer {
		switch {
		case strings.HasSuffix(r.Path, "/reverse"):
			return fakeAnswer{Status: 400, Body: `{"code":"ORDER_PAID","message":"paid"}`}
		case r.Method == http.MethodPost:
			return fakeAnswer{Status: 403, Body: `{"code":"NOT_ENOUGH","message":"no money"}`}
		}
		return fakeAnswer{Status: 200, Body: fullTransactionJSON}
	})
	c, rec := newTestClient(t, f, nil)
	ctx := context.Background()
	_, _ = c.CreateTransaction(ctx, fullTransactionRequest())
	if _, err := c.QueryTransaction(ctx, service.TransactionQuery{SubMchID: "10000097", OutTradeNo: "1217752501201407033233368018"}); err != nil {
		t.Fatal(err)
	}
	_ = c.ReverseTransaction(ctx, "10000097", "1217752501201407033233368018")
	want := []service.WeChatCall{
		{Method: "POST", Path: "/v3/global/papay/transactions", HTTPStatus: 403, Code: "NOT_ENOUGH", RequestID: "REQ-1", Time: testNow},
		{Method: "GET", Path: "/v3/global/papay/transactions/out-trade-no/1217752501201407033233368018", HTTPStatus: 200, RequestID: "REQ-2", Time: testNow},
		{Method: "POST", Path: "/v3/global/papay/transactions/out-trade-no/1217752501201407033233368018/reverse", HTTPStatus: 400, Code: "ORDER_PAID", RequestID: "REQ-3", Time: testNow},
	}
	if diff := cmp.Diff(want, rec.recorded()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestParseTransaction(t *testing.T) {
	t.Parallel()
	good := []struct {
		name string
		in   string
		want service.RemoteTransaction
	}{
		{"transaction_id wins over id", `{"out_trade_no":"T","transaction_id":"A","id":"B"}`,
			service.RemoteTransaction{OutTradeNo: "T", TransactionID: "A"}},
		{"openid with a sub app is the sub openid", `{"sub_appid":"wxsub","payer":{"openid":"o","sp_openid":"sp"}}`,
			service.RemoteTransaction{SPOpenID: "sp", SubOpenID: "o"}},
		{"compact success_time", `{"success_time":"20211209105627"}`,
			service.RemoteTransaction{SuccessTime: time.Date(2021, 12, 9, 10, 56, 27, 0, beijing)}},
		{"numeric strings", `{"amount":{"total":"10","payer_total":" 8 ","exchange_rate":{"type":"SETTLEMENT_RATE","rate":"100000000"}},
			"promotion_detail":[{"amount":"3","wxpay_contribute_amount":null,"wechatpay_contribute_amount":"2","goods_detail":[{"quantity":"1"}]}]}`,
			service.RemoteTransaction{Amount: service.Money{Total: 10}, PayerTotal: 8, ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 100000000},
				PromotionDetail: []service.PromotionDetail{{Amount: 3, WxpayContributeAmount: 2, GoodsDetail: []service.GoodsDetail{{Quantity: 1}}}}}},
		{"loose texts", `{"bank_type":{"x":1},"trade_type":true,"trade_state_desc":-1}`, service.RemoteTransaction{TradeStateDesc: "-1"}},
		{"large amount", `{"amount":{"total":9007199254740993}}`, service.RemoteTransaction{Amount: service.Money{Total: 9007199254740993}}},
	}
	for _, tt := range good {
		got, err := parseTransaction([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, timeEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	for _, in := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"amount":{"total":1.5}}`, `{"amount":{"total":1e3}}`, `{"amount":{"total":"1.0"}}`,
		`{"amount":{"total":99999999999999999999}}`, `{"amount":[]}`, `{"out_trade_no":1}`, `{"trade_state":null,"transaction_id":["x"]}`,
		`{"promotion_detail":[{"amount":0.5}]}`, `{"promotion_detail":[{"goods_detail":[{"price":"1,000"}]}]}`,
		`{"amount":{"exchange_rate":{"rate":8.765}}}`, `{"payer":"o"}`,
	} {
		if _, err := parseTransaction([]byte(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}
