package sandbox_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// rawCall sends a request with an Authorization header built by sign (nil: none).
func (e *env) rawCall(t *testing.T, method, uri string, body []byte, sign func(method, uri string, body []byte) string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.apiURL+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if sign != nil {
		req.Header.Set("Authorization", sign(method, uri, body))
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, uri, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// signer returns an Authorization builder; zero fields take the valid values.
func (e *env) signer(t *testing.T, mutate func(a *authParams)) func(string, string, []byte) string {
	return func(method, uri string, body []byte) string {
		a := authParams{mchID: e.creds.MchID, serial: e.creds.MerchantSerial, key: e.creds.MerchantKey,
			ts: time.Now().Unix(), nonce: "593BEC0C930BF1AFEB40B4A08C8FB242", body: body}
		if mutate != nil {
			mutate(&a)
		}
		h, err := sandbox.Authorization(a.mchID, a.serial, a.key, method, uri, a.ts, a.nonce, a.body)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
}

type authParams struct {
	mchID, serial, nonce string
	key                  *rsa.PrivateKey
	ts                   int64
	body                 []byte
}

// verifySigned checks a raw response with wechatpay-go's own response validator.
func (e *env) verifySigned(t *testing.T, resp *http.Response) {
	t.Helper()
	if err := validators.NewWechatPayResponseValidator(certVerifier(e.creds)).Validate(context.Background(), resp); err != nil {
		t.Fatalf("response signature: %v", err)
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	body, _ := json.Marshal(e.presignBody("C500", "oAuth", e.sinkURL))
	uri := contractsV3 + "/miniprogram-pre-entrust-sign"
	tests := []struct {
		name   string
		sign   func(string, string, []byte) string
		issue  string
		header bool // detail.sign_information expected
	}{
		{"no authorization", nil, "authorization must use the WECHATPAY2-SHA256-RSA2048 scheme", false},
		{"wrong key", e.signer(t, func(a *authParams) { a.key = e.creds.PlatformKey }), "sign not match", true},
		{"tampered body", e.signer(t, func(a *authParams) { a.body = append(bytes.Clone(a.body), ' ') }), "sign not match", true},
		{"wrong mchid", e.signer(t, func(a *authParams) { a.mchID = "1900000002" }), `mchid "1900000002" is not a known merchant`, false},
		{"wrong serial", e.signer(t, func(a *authParams) { a.serial = e.creds.PlatformSerial }),
			`serial_no "` + e.creds.PlatformSerial + `" is not the merchant's API certificate`, false},
		{"stale timestamp", e.signer(t, func(a *authParams) { a.ts -= 300 }), "timestamp differs from the server time by 5 minutes or more", false},
		{"future timestamp", e.signer(t, func(a *authParams) { a.ts += 305 }), "timestamp differs from the server time by 5 minutes or more", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := e.rawCall(t, http.MethodPost, uri, body, tt.sign)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			e.verifySigned(t, resp) // error responses are signed too
			var got struct {
				Code   string         `json:"code"`
				Detail map[string]any `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			info, hasInfo := got.Detail["sign_information"]
			delete(got.Detail, "sign_information")
			want := map[string]any{"field": "signature", "location": "authorization", "issue": tt.issue}
			if got.Code != sandbox.CodeSignError {
				t.Errorf("code %s, want SIGN_ERROR", got.Code)
			}
			if diff := cmp.Diff(want, got.Detail); diff != "" {
				t.Errorf("detail (-want +got):\n%s", diff)
			}
			if hasInfo != tt.header {
				t.Errorf("sign_information present = %v, want %v", hasInfo, tt.header)
			}
			if tt.header && !strings.HasPrefix(info.(map[string]any)["truncated_sign_message"].(string), "POST\n"+uri+"\n") {
				t.Errorf("sign_information %v", info)
			}
		})
	}
}

func TestSignErrorFromSDKWithSkewedClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{Now: func() time.Time { return time.Now().Add(6 * time.Minute) }})
	_, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/app-pre-entrust-sign",
		e.presignBody("C510", "oSkew", e.sinkURL))
	apiError(t, err, http.StatusUnauthorized, sandbox.CodeSignError)
}

func TestAuthorizationItemsInAnyOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C520", "oOrder", e.sinkURL)
	uri := contractsV3 + "/" + c.ContractID + "?sp_appid=" + e.creds.SPAppID + "&sub_mchid=" + e.creds.SubMchID
	reorder := func(method, uri string, body []byte) string {
		h := e.signer(t, nil)(method, uri, body)
		scheme, items, _ := strings.Cut(h, " ")
		parts := strings.Split(items, ",")
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		return scheme + " " + strings.Join(parts, ", ")
	}
	resp := e.rawCall(t, http.MethodGet, uri, nil, reorder)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	e.verifySigned(t, resp)
}

func TestUnknownPathsAreSignedNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	for _, tt := range []struct{ method, uri string }{
		{http.MethodGet, "/v3/global/papay/transactions/id/4200001136202112092809736426?sub_mchid=1"}, // no /id/ in papay
		{http.MethodPost, "/v3/papay/hk/contracts/100005698"},
		{http.MethodDelete, contractsV3 + "/Wx1"},
	} {
		resp := e.rawCall(t, tt.method, tt.uri, nil, e.signer(t, nil))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", tt.method, tt.uri, resp.StatusCode)
			continue
		}
		e.verifySigned(t, resp)
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		if got["code"] != sandbox.CodeNotFound {
			t.Errorf("%s %s: %v, want NOT_FOUND", tt.method, tt.uri, got)
		}
	}
}

func TestMediaTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	body, _ := json.Marshal(e.presignBody("C530", "oMedia", e.sinkURL))
	req, _ := http.NewRequest(http.MethodPost, e.apiURL+contractsV3+"/app-pre-entrust-sign", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", e.signer(t, nil)(http.MethodPost, contractsV3+"/app-pre-entrust-sign", body))
	resp, err := e.httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != http.StatusBadRequest || got["detail"].(map[string]any)["field"] != "Content-Type" {
		t.Fatalf("got %d %v, want 400 PARAM_ERROR on Content-Type", resp.StatusCode, got)
	}
}
