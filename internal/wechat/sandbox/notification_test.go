package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// parse runs wechatpay-go's notification handler over a crafted callback.
func parse(t *testing.T, creds *sandbox.Credentials, h http.Header, body []byte) (*notify.Request, map[string]any, error) {
	t.Helper()
	handler, err := notify.NewRSANotifyHandler(string(creds.APIv3Key), certVerifier(creds))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/papay/notify", bytes.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	var content map[string]any
	n, err := handler.ParseNotifyRequest(context.Background(), req, &content)
	return n, content, err
}

func TestBuildNotification(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	resource := sandbox.ContractResource{
		SPMchID: e.creds.MchID, SubMchID: e.creds.SubMchID, SPAppID: e.creds.SPAppID,
		OutContractCode: "C900", PlanID: planID, ContractID: "Wx15463511252015071056489715",
		OpenID: "oBuild", OperateTime: "2015-09-01T10:00:00+08:00", ContractTerminationMode: sandbox.TerminatedByUser,
	}
	h, body, err := e.sb.BuildNotification(sandbox.EventTerminate, "EV-2018022511223320873", resource)
	if err != nil {
		t.Fatal(err)
	}
	n, content, err := parse(t, e.creds, h, body)
	if err != nil {
		t.Fatalf("the SDK rejected a built notification: %v", err)
	}
	want := map[string]any{
		"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "sp_appid": e.creds.SPAppID,
		"out_contract_code": "C900", "plan_id": float64(planID), "contract_id": "Wx15463511252015071056489715",
		"openid": "oBuild", "operate_time": "2015-09-01T10:00:00+08:00", "contract_termination_mode": "USER",
	}
	if diff := cmp.Diff(want, content); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	var env sandbox.Notification
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if n.ID != "EV-2018022511223320873" || env.ResourceType != "encrypt-resource" || env.Summary == "" ||
		env.Resource.Algorithm != "AEAD_AES_256_GCM" || env.Resource.OriginalType != "papay" ||
		env.Resource.AssociatedData != "papay" || len(env.Resource.Nonce) != 12 {
		t.Errorf("envelope %+v", env)
	}
	if _, err := time.Parse(time.RFC3339, env.CreateTime); err != nil || env.CreateTime[len(env.CreateTime)-6:] != "+08:00" {
		t.Errorf("create_time %q", env.CreateTime)
	}
	for k, v := range map[string]string{
		"Wechatpay-Serial": e.creds.PlatformSerial, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
		"Content-Type": "application/json",
	} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if h.Get("Request-ID") == "" || len(h.Get("Wechatpay-Nonce")) != 32 {
		t.Errorf("headers %v", h)
	}
}

func TestTamperedNotificationsAreRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	resource := map[string]any{"contract_id": "Wx1", "plan_id": planID}
	h, body, err := e.sb.BuildNotification(sandbox.EventSign, "", resource)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(key bool, ts int64, b []byte) http.Header {
		k := e.creds.PlatformKey
		if key {
			k = e.creds.MerchantKey // not WeChat's key
		}
		out, err := sandbox.SignatureHeaders(k, e.creds.PlatformSerial, ts, "nonce1234567890", b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	otherKey := []byte("0123456789abcdefghijABCDEFGHIJ01")
	plaintext, _ := json.Marshal(resource)
	enc, err := sandbox.EncryptResource(otherKey, plaintext, "papay")
	if err != nil {
		t.Fatal(err)
	}
	var env sandbox.Notification
	json.Unmarshal(body, &env)
	env.Resource = enc
	foreignBody, _ := json.Marshal(env)
	now := time.Now().Unix()

	tests := []struct {
		name string
		h    http.Header
		body []byte
	}{
		{"signed with another key", resign(true, now, body), body},
		{"timestamp 5 minutes old", resign(false, now-300, body), body},
		{"body changed after signing", h, bytes.Replace(body, []byte(`"PAPAY.SIGN"`), []byte(`"PAPAY.TERMINATE"`), 1)},
		{"encrypted under another APIv3 key", resign(false, now, foreignBody), foreignBody},
		{"signature over another body", resign(false, now, foreignBody), body},
		{"unknown serial", func() http.Header {
			out := resign(false, now, body)
			out.Set("Wechatpay-Serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
			return out
		}(), body},
	}
	for _, tt := range tests {
		if _, _, err := parse(t, e.creds, tt.h, tt.body); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// Control: a correct re-signing is accepted, so the failures above come from the tampering.
	if _, _, err := parse(t, e.creds, resign(false, now, body), body); err != nil {
		t.Errorf("re-signed original rejected: %v", err)
	}
}

func TestEncryptResourceMatchesSDKDecryption(t *testing.T) {
	t.Parallel()
	key := []byte(testCredentials(t).APIv3Key)
	enc, err := sandbox.EncryptResource(key, []byte(`{"hello":"世界"}`), "certificate")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := utils.DecryptAES256GCM(string(key), enc.AssociatedData, enc.Nonce, enc.Ciphertext)
	if err != nil || plain != `{"hello":"世界"}` {
		t.Fatalf("DecryptAES256GCM = %q, %v", plain, err)
	}
	if _, err := sandbox.EncryptResource(key[:16], nil, ""); err == nil {
		t.Error("a 16-byte key was accepted (AES-128 is not AEAD_AES_256_GCM)")
	}
}

func TestSignMessageMatchesSDK(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	ts := time.Now().Unix()
	sig, err := sandbox.SignMessage(creds.PlatformKey, ts, "abc", []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	msg := strconv.FormatInt(ts, 10) + "\nabc\n" + `{"a":1}` + "\n"
	if err := certVerifier(creds).Verify(context.Background(), creds.PlatformSerial, msg, sig); err != nil {
		t.Fatalf("SDK verifier: %v", err)
	}
	want, _ := utils.SignSHA256WithRSA(msg, creds.PlatformKey) // PKCS#1 v1.5 is deterministic
	if sig != want {
		t.Error("signature differs from utils.SignSHA256WithRSA")
	}
}
