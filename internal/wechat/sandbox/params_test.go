package sandbox_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestParamErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C400", "oParam", e.sinkURL)
	valid := func(mutate func(map[string]any)) map[string]any {
		b := e.presignBody("C401", "oOther", e.sinkURL)
		mutate(b)
		return b
	}
	mp := contractsV3 + "/miniprogram-pre-entrust-sign"
	query := "?sub_mchid=" + e.creds.SubMchID + "&sp_appid=" + e.creds.SPAppID
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		detail map[string]any // expected detail keys (value omitted unless listed)
	}{
		{"missing openid", http.MethodPost, mp, valid(func(b map[string]any) { delete(b, "openid") }),
			400, sandbox.CodeParamError, map[string]any{"field": "/openid", "location": "body", "issue": "is required"}},
		{"plan_id string", http.MethodPost, mp, valid(func(b map[string]any) { b["plan_id"] = "123" }),
			400, sandbox.CodeParamError, map[string]any{"field": "/plan_id", "location": "body", "issue": "must be a JSON number"}},
		{"plan_id zero", http.MethodPost, mp, valid(func(b map[string]any) { b["plan_id"] = 0 }),
			400, sandbox.CodeParamError, map[string]any{"field": "/plan_id", "location": "body", "value": 0.0, "issue": "must be a positive integer"}},
		{"out_contract_code too long", http.MethodPost, mp, valid(func(b map[string]any) { b["out_contract_code"] = strings.Repeat("9", 33) }),
			400, sandbox.CodeParamError, map[string]any{"field": "/out_contract_code", "location": "body", "value": strings.Repeat("9", 33), "issue": "must be 1 to 32 bytes long"}},
		{"emoji display name", http.MethodPost, mp, valid(func(b map[string]any) { b["user_display_name"] = "Zhang 😀" }),
			400, sandbox.CodeParamError, map[string]any{"field": "/user_display_name", "location": "body", "value": "Zhang 😀", "issue": "must contain only 1 to 3 byte UTF-8 characters (no emoji)"}},
		{"notify url with query", http.MethodPost, mp, valid(func(b map[string]any) { b["success_notify_url"] = "https://m.example/n?a=1" }),
			400, sandbox.CodeParamError, map[string]any{"field": "/success_notify_url", "location": "body", "value": "https://m.example/n?a=1", "issue": "must not carry query parameters or a fragment"}},
		{"bad expired_time", http.MethodPost, mp, valid(func(b map[string]any) { b["expired_time"] = "tomorrow" }),
			400, sandbox.CodeParamError, map[string]any{"field": "/expired_time", "location": "body", "value": "tomorrow", "issue": "must be an RFC 3339 time such as 2018-06-08T10:34:56+08:00"}},
		{"h5 without user_client_ip", http.MethodPost, contractsV3 + "/h5-pre-entrust-sign", valid(func(b map[string]any) { delete(b, "user_client_ip") }),
			400, sandbox.CodeParamError, map[string]any{"field": "/user_client_ip", "location": "body", "issue": "is required"}},
		{"missing sub_mchid first", http.MethodPost, mp, map[string]any{"openid": "x"},
			400, sandbox.CodeParamError, map[string]any{"field": "/sub_mchid", "location": "body", "issue": "is required"}},
		{"malformed JSON", http.MethodPost, mp, []byte(`{"sub_mchid":`),
			400, sandbox.CodeParamError, map[string]any{"location": "body", "issue": "the request body is not valid JSON"}},
		{"unknown sub_mchid", http.MethodPost, mp, valid(func(b map[string]any) { b["sub_mchid"] = "1999999999" }),
			403, sandbox.CodeNoAuth, nil},
		{"foreign sp_appid", http.MethodPost, mp, valid(func(b map[string]any) { b["sp_appid"] = "wx0000000000000000" }),
			403, sandbox.CodeNoAuth, nil},
		{"query without sp_appid", http.MethodGet, contractsV3 + "/" + c.ContractID + "?sub_mchid=" + e.creds.SubMchID, nil,
			400, sandbox.CodeParamError, map[string]any{"field": "sp_appid", "location": "query", "issue": "is required"}},
		{"query by code without plan_id", http.MethodGet, contractsV3 + "/out-contract-code/C400" + query, nil,
			400, sandbox.CodeParamError, map[string]any{"field": "plan_id", "location": "query", "issue": "is required"}},
		{"query by code bad plan_id", http.MethodGet, contractsV3 + "/out-contract-code/C400" + query + "&plan_id=x", nil,
			400, sandbox.CodeParamError, map[string]any{"field": "plan_id", "location": "query", "value": "x", "issue": "must be a positive integer"}},
		{"contract_id too long", http.MethodGet, contractsV3 + "/" + strings.Repeat("W", 65) + query, nil,
			400, sandbox.CodeParamError, map[string]any{"field": "contract_id", "location": "path", "value": strings.Repeat("W", 65), "issue": "must be 1 to 64 bytes long"}},
		{"terminate without note", http.MethodPost, contractsV3 + "/" + c.ContractID + "/terminate",
			map[string]any{"sp_appid": e.creds.SPAppID, "sub_mchid": e.creds.SubMchID},
			400, sandbox.CodeParamError, map[string]any{"field": "/termination_note", "location": "body", "issue": "is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.method == http.MethodGet {
				_, err = e.client.Get(context.Background(), e.apiURL+tt.path)
			} else {
				_, err = e.client.Post(context.Background(), e.apiURL+tt.path, tt.body)
			}
			apiErr := apiError(t, err, tt.status, tt.code)
			if tt.detail == nil {
				return
			}
			if diff := cmp.Diff(tt.detail, apiErr.Detail); diff != "" {
				t.Errorf("detail (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	body := e.presignBody("C410", "oX", e.sinkURL)
	body["unknown_field"] = map[string]any{"nested": true}
	body["sp_mchid"] = e.creds.MchID
	e.presign(t, "miniprogram", body)
}
