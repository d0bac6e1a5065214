package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

var testMerchant = service.Merchant{SubMchID: "10000097", SPAppID: "wxcbda96de0b165486", SubAppID: "wxcbda96de0b165484"}

// fullPresign sets every field, so each channel's field set shows.
func fullPresign(ch service.Channel) service.PresignRequest {
	return service.PresignRequest{
		Merchant: testMerchant, Channel: ch, PlanID: 123, OutContractCode: "100001256",
		OpenID: "ouFhd5X9s9WteC3eWRjXV3lea123", UserDisplayName: "Zhang San",
		SuccessNotifyURL: "https://example.com/papay/sign", UserClientIP: "119.145.83.6",
		ReturnURL: "https://example.com/back?a=1&b=<2>", ReturnAppID: "wxreturnapp",
		ExpireTime: time.Date(2021, 11, 20, 13, 29, 35, 0, time.FixedZone("", 8*3600)),
	}
}

// decodeJSON decodes b keeping numbers as json.Number.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return m
}

func TestPresignChannels(t *testing.T) {
	t.Parallel()
	common := map[string]any{
		"sp_appid": "wxcbda96de0b165486", "sub_mchid": "10000097", "sub_appid": "wxcbda96de0b165484",
		"plan_id": json.Number("123"), "out_contract_code": "100001256", "user_display_name": "Zhang San",
		"success_notify_url": "https://example.com/papay/sign", "expired_time": "2021-11-20T13:29:35+08:00",
	}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	const openid, ip, ret = "ouFhd5X9s9WteC3eWRjXV3lea123", "119.145.83.6", "https://example.com/back?a=1&b=<2>"
	tests := []struct {
		channel  service.Channel
		path     string
		answer   string
		wantBody map[string]any
		want     service.PresignResult
	}{
		{service.ChannelMiniProgram, "/v3/global/papay/contracts/miniprogram-pre-entrust-sign", `{"session_id":"201710180325670965"}`,
			with(map[string]any{"openid": openid, "user_client_ip": ip}), service.PresignResult{SessionID: "201710180325670965"}},
		{service.ChannelApp, "/v3/global/papay/contracts/app-pre-entrust-sign", `{"session_id":"S-APP"}`,
			with(map[string]any{"openid": openid, "user_client_ip": ip}), service.PresignResult{SessionID: "S-APP"}},
		{service.ChannelH5, "/v3/global/papay/contracts/h5-pre-entrust-sign", `{"sign_url":"https://h5/sign"}`,
			with(map[string]any{"user_client_ip": ip, "return_url": ret, "return_appid": "wxreturnapp"}), service.PresignResult{SignURL: "https://h5/sign"}},
		{service.ChannelJSAPI, "/v3/global/papay/contracts/jsapi-pre-entrust-sign", `{"sign_url":"https://jsapi/sign","extra":1}`,
			with(map[string]any{"openid": openid, "return_url": ret}), service.PresignResult{SignURL: "https://jsapi/sign"}},
		{service.ChannelWeb, "/v3/global/papay/contracts/web-pre-entrust-sign", `{"show_code_url":"https://web/show"}`,
			with(map[string]any{"return_url": ret}), service.PresignResult{ShowCodeURL: "https://web/show"}},
		{service.ChannelWeb, "/v3/global/papay/contracts/web-pre-entrust-sign", `{"sign_url":"https://web/legacy"}`,
			with(map[string]any{"return_url": ret}), service.PresignResult{ShowCodeURL: "https://web/legacy"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.channel)+tt.answer, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: tt.answer} })
			c, _ := newTestClient(t, f, nil)
			got, err := c.Presign(context.Background(), fullPresign(tt.channel))
			if err != nil {
				t.Fatalf("Presign: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != tt.path || r.RawQuery != "" {
				t.Errorf("request %s %s?%s, want POST %s", r.Method, r.Path, r.RawQuery, tt.path)
			}
			if diff := cmp.Diff(tt.wantBody, decodeJSON(t, r.Body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			// Exact bytes: not HTML-escaped, no trailing newline.
			if bytes.HasSuffix(r.Body, []byte("\n")) || bytes.Contains(r.Body, []byte(`\u0026`)) {
				t.Errorf("body bytes %q are not json.Marshal-exact", r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if a := r.Header.Get("Accept"); a != "application/json" {
				t.Errorf("Accept %q", a)
			}
		})
	}
}

func TestPresignOmitsEmptyOptionalFields(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: `{"sign_url":"u"}`} })
	c, _ := newTestClient(t, f, nil)
	_, err := c.Presign(context.Background(), service.PresignRequest{
		Merchant: service.Merchant{SubMchID: "10000097", SPAppID: "wxsp"}, Channel: service.ChannelH5,
		PlanID: 7, OutContractCode: "C1", SuccessNotifyURL: "https://n",
	})
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	want := `{"sp_appid":"wxsp","sub_mchid":"10000097","plan_id":7,"out_contract_code":"C1","success_notify_url":"https://n"}`
	if got := string(f.requests()[0].Body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestPresignAnswerWithoutSession(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`{}`, `{"sign_url":"wrong field for the mini program"}`, `not json`, `{"session_id":1}`} {
		f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: body} })
		c, _ := newTestClient(t, f, nil)
		_, err := c.Presign(context.Background(), fullPresign(service.ChannelMiniProgram))
		if !errors.Is(err, service.ErrWeChatUnavailable) {
			t.Errorf("answer %s: err %v, want ErrWeChatUnavailable", body, err)
		}
	}
}

func TestPresignUnknownChannel(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: `{}`} })
	c, rec := newTestClient(t, f, nil)
	if _, err := c.Presign(context.Background(), fullPresign("NATIVE")); err == nil {
		t.Fatal("Presign on an unknown channel succeeded")
	}
	if n := len(f.requests()) + len(rec.recorded()); n != 0 {
		t.Errorf("unknown channel reached WeChat or the audit (%d)", n)
	}
}

const contractJSON = `{"sp_mchid":"10000100","sub_mchid":"1900000109","sp_appid":"wx426b3015555b46be",
 "contract_id":"203","plan_id":66,"openid":"oHZx6uMbIG46UXQ3SKxVYEgw1LZs","out_contract_code":"1005",
 "user_display_name":"test","state":"TERMINATED","signed_time":"2015-07-01T10:00:00+08:00",
 "terminated_time":"2015-09-01T10:00:00+08:00","termination_mode":"EXPIRED","termination_note":"delete",
 "some_future_field":{"x":[1,2]}}`

func TestQueryContract(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("", 8*3600)
	wantContract := service.RemoteContract{
		ContractID: "203", OutContractCode: "1005", PlanID: 66, OpenID: "oHZx6uMbIG46UXQ3SKxVYEgw1LZs",
		UserDisplayName: "test", State: "TERMINATED",
		SignedTime:      time.Date(2015, 7, 1, 10, 0, 0, 0, cst),
		TerminatedTime:  time.Date(2015, 9, 1, 10, 0, 0, 0, cst),
		TerminationMode: "EXPIRED", TerminationNote: "delete",
	}
	tests := []struct {
		name      string
		q         service.ContractQuery
		wantPath  string
		wantQuery url.Values
	}{
		{"by id", service.ContractQuery{Merchant: testMerchant, ContractID: "203"},
			"/v3/global/papay/contracts/203",
			url.Values{"sub_mchid": {"10000097"}, "sp_appid": {"wxcbda96de0b165486"}, "sub_appid": {"wxcbda96de0b165484"}}},
		{"by id escaped", service.ContractQuery{Merchant: service.Merchant{SubMchID: "1", SPAppID: "wx"}, ContractID: "a/b c"},
			"/v3/global/papay/contracts/a%2Fb%20c",
			url.Values{"sub_mchid": {"1"}, "sp_appid": {"wx"}}},
		{"by code", service.ContractQuery{Merchant: testMerchant, OutContractCode: "1005", PlanID: 66},
			"/v3/global/papay/contracts/out-contract-code/1005",
			url.Values{"sub_mchid": {"10000097"}, "sp_appid": {"wxcbda96de0b165486"}, "sub_appid": {"wxcbda96de0b165484"}, "plan_id": {"66"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: contractJSON} })
			c, _ := newTestClient(t, f, nil)
			got, err := c.QueryContract(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("QueryContract: %v", err)
			}
			if diff := cmp.Diff(wantContract, got); diff != "" {
				t.Errorf("contract (-want +got):\n%s", diff)
			}
			r := f.requests()[0]
			if r.Method != http.MethodGet || r.Path != tt.wantPath || len(r.Body) != 0 {
				t.Errorf("request %s %s body %q, want GET %s", r.Method, r.Path, r.Body, tt.wantPath)
			}
			q, err := url.ParseQuery(r.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantQuery, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueryContractLiberal(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 200, Body: `{"contract_id":"X","plan_id":"66","state":"SOME_NEW_STATE","signed_time":"yesterday","terminated_time":null}`}
	})
	c, _ := newTestClient(t, f, nil)
	got, err := c.QueryContract(context.Background(), service.ContractQuery{Merchant: testMerchant, ContractID: "X"})
	if err != nil {
		t.Fatalf("QueryContract: %v", err)
	}
	want := service.RemoteContract{ContractID: "X", PlanID: 66, State: "SOME_NEW_STATE"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contract (-want +got):\n%s", diff)
	}
}

func TestQueryContractNeedsAKey(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 200, Body: `{}`} })
	c, _ := newTestClient(t, f, nil)
	for _, q := range []service.ContractQuery{{Merchant: testMerchant}, {Merchant: testMerchant, ContractID: ".."}} {
		if _, err := c.QueryContract(context.Background(), q); err == nil {
			t.Errorf("QueryContract(%+v) succeeded", q)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestTerminateContract(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: http.StatusNoContent} })
	c, rec := newTestClient(t, f, nil)
	err := c.TerminateContract(context.Background(), service.TerminateRequest{
		Merchant: testMerchant, ContractID: "Wx15463511252015071056489715", TerminationNote: "Cause of termination",
	})
	if err != nil {
		t.Fatalf("TerminateContract: %v", err)
	}
	r := f.requests()[0]
	if want := "/v3/global/papay/contracts/Wx15463511252015071056489715/terminate"; r.Method != http.MethodPost || r.Path != want {
		t.Errorf("request %s %s, want POST %s", r.Method, r.Path, want)
	}
	want := `{"sp_appid":"wxcbda96de0b165486","sub_mchid":"10000097","sub_appid":"wxcbda96de0b165484","termination_note":"Cause of termination"}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
	if calls := rec.recorded(); len(calls) != 1 || calls[0].HTTPStatus != http.StatusNoContent {
		t.Errorf("audit %+v, want one 204 record", calls)
	}
}
