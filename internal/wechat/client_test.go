package wechat

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/papayd/papayd/internal/service"
)

func terminate(c *Client) error {
	return c.TerminateContract(context.Background(), service.TerminateRequest{Merchant: testMerchant, ContractID: "C1", TerminationNote: "n"})
}

func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		answer        fakeAnswer
		want          service.RemoteError
		retry, notFnd bool
	}{
		{"param error", fakeAnswer{Status: 400, Sign: signPlatform,
			Body: `{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"/termination_note","value":"","issue":"empty","location":"body"}}`},
			service.RemoteError{HTTPStatus: 400, Code: "PARAM_ERROR", Message: "参数错误", Field: "termination_note"}, false, false},
		{"contract not exist", fakeAnswer{Status: 403, Sign: signPlatform, Body: `{"code":"CONTRACT_NOT_EXIST","message":"contract not found"}`},
			service.RemoteError{HTTPStatus: 403, Code: "CONTRACT_NOT_EXIST", Message: "contract not found"}, false, true},
		{"system error", fakeAnswer{Status: 500, Sign: signPlatform, Body: `{"code":"SYSTEM_ERROR","message":"系统错误"}`},
			service.RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR", Message: "系统错误"}, true, false},
		{"unsigned error answer", fakeAnswer{Status: 429, Sign: signNone, Body: `{"code":"RATELIMIT_EXCEEDED","message":"slow down"}`},
			service.RemoteError{HTTPStatus: 429, Code: "RATELIMIT_EXCEEDED", Message: "slow down"}, true, false},
		{"proxy 502", fakeAnswer{Status: 502, Sign: signNone, Body: `<html>bad gateway</html>`},
			service.RemoteError{HTTPStatus: 502, Message: "Bad Gateway"}, true, false},
		{"accepted, not processed", fakeAnswer{Status: 202, Sign: signPlatform},
			service.RemoteError{HTTPStatus: 202, Message: "Accepted"}, true, false},
		{"redirect", fakeAnswer{Status: 302, Sign: signNone, Headers: map[string]string{"Location": "/elsewhere"}},
			service.RemoteError{HTTPStatus: 302, Message: "Found"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.answer.Headers = mergeHeaders(tt.answer.Headers, map[string]string{"Set-Cookie": "secret-cookie"})
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return tt.answer })
			c, rec := newTestClient(t, f, nil)
			err := terminate(c)
			var re *service.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err %v, want a *service.RemoteError", err)
			}
			if diff := cmp.Diff(tt.want, *re, cmpopts.IgnoreFields(service.RemoteError{}, "RequestID")); diff != "" {
				t.Errorf("RemoteError (-want +got):\n%s", diff)
			}
			if re.RequestID == "" {
				t.Error("RemoteError has no RequestID")
			}
			if re.Retryable() != tt.retry || re.NotFound() != tt.notFnd {
				t.Errorf("Retryable %v NotFound %v, want %v %v", re.Retryable(), re.NotFound(), tt.retry, tt.notFnd)
			}
			if errors.Is(err, service.ErrWeChatUnavailable) {
				t.Error("a WeChat answer wraps ErrWeChatUnavailable")
			}
			// The SDK's APIError text dumps every header; ours must not.
			if s := err.Error(); strings.Contains(s, "secret-cookie") || strings.Contains(s, "Wechatpay-Signature") {
				t.Errorf("error text leaks headers: %s", s)
			}
			// Retryable answers are retried, each attempt its own record.
			calls, attempts := rec.recorded(), 1
			if tt.retry {
				attempts = testAttempts
			}
			if len(calls) != attempts || len(f.requests()) != attempts {
				t.Errorf("%d records of %d requests, want %d", len(calls), len(f.requests()), attempts)
			}
			for _, call := range calls {
				if call.Code != tt.want.Code || call.HTTPStatus != tt.want.HTTPStatus || call.Error != "" {
					t.Errorf("audit %+v", call)
				}
			}
		})
	}
}

func mergeHeaders(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestOutcomeUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     fakeAnswer
		call       func(*Client) error
		wantStatus int
		extra      error
	}{
		{"timeout", fakeAnswer{Status: 204, Delay: 5 * time.Second}, terminate, 0, context.DeadlineExceeded},
		{"unsigned 200", fakeAnswer{Status: 200, Sign: signNone, Body: contractJSON}, queryByID, 200, nil},
		{"forged 200", fakeAnswer{Status: 200, Sign: signForged, Body: contractJSON}, queryByID, 200, nil},
		{"unknown serial", fakeAnswer{Status: 200, Sign: signRotated, Body: contractJSON}, queryByID, 200, nil},
		{"public key not configured", fakeAnswer{Status: 200, Sign: signPublicKey, Body: contractJSON}, queryByID, 200, nil},
		{"stale signature", fakeAnswer{Status: 200, Sign: signStale, Body: contractJSON}, queryByID, 200, nil},
		{"unsigned 204", fakeAnswer{Status: 204, Sign: signNone}, terminate, 204, nil},
		{"verified 200 not JSON", fakeAnswer{Status: 200, Sign: signPlatform, Body: `<html>`}, queryByID, 200, nil},
		{"oversized answer", fakeAnswer{Status: 200, Sign: signPlatform, Body: `{"x":"` + strings.Repeat("a", maxAnswerBytes) + `"}`}, queryByID, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return tt.answer })
			// One attempt: this is about sorting one answer (retries: retry_test.go).
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.Timeout, cfg.MaxAttempts = 300*time.Millisecond, 1 })
			err := tt.call(c)
			if !errors.Is(err, service.ErrWeChatUnavailable) {
				t.Fatalf("err %v, want ErrWeChatUnavailable", err)
			}
			var re *service.RemoteError
			if errors.As(err, &re) {
				t.Errorf("err is a RemoteError %+v", re)
			}
			if tt.extra != nil && !errors.Is(err, tt.extra) {
				t.Errorf("err %v, want it to wrap %v", err, tt.extra)
			}
			calls := rec.recorded()
			if len(calls) != 1 || calls[0].HTTPStatus != tt.wantStatus {
				t.Fatalf("audit %+v, want one record with status %d", calls, tt.wantStatus)
			}
		})
	}
}

func queryByID(c *Client) error {
	_, err := c.QueryContract(context.Background(), service.ContractQuery{Merchant: testMerchant, ContractID: "203"})
	return err
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204} })
	c, rec := newTestClient(t, f, nil)
	f.srv.Close()
	if err := terminate(c); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Fatalf("err %v, want ErrWeChatUnavailable", err)
	}
	calls := rec.recorded()
	if len(calls) != testAttempts {
		t.Errorf("%d records, want one per attempt (%d)", len(calls), testAttempts)
	}
	for _, call := range calls {
		if call.HTTPStatus != 0 || call.Error == "" {
			t.Errorf("audit %+v, want status 0 and the transport error", call)
		}
	}
}

func TestVerificationModes(t *testing.T) {
	t.Parallel()
	certMode := func(cfg *Config) {}
	pubMode := func(cfg *Config) {
		cfg.PlatformCerts, cfg.PublicKeyID, cfg.PublicKey = nil, testPublicKeyID, &publicModeKey.PublicKey
	}
	migration := func(cfg *Config) { cfg.PublicKeyID, cfg.PublicKey = testPublicKeyID, &publicModeKey.PublicKey }
	tests := []struct {
		name       string
		mode       func(*Config)
		sign       signing
		ok         bool
		wantSerial string // announced in the request's Wechatpay-Serial
	}{
		{"certificate, cert-signed", certMode, signPlatform, true, platformSerial},
		{"certificate, key-signed", certMode, signPublicKey, false, platformSerial},
		{"public key, key-signed", pubMode, signPublicKey, true, testPublicKeyID},
		{"public key, cert-signed", pubMode, signPlatform, false, testPublicKeyID},
		{"migration, cert-signed", migration, signPlatform, true, testPublicKeyID},
		{"migration, key-signed", migration, signPublicKey, true, testPublicKeyID},
		{"migration, unknown serial", migration, signRotated, false, testPublicKeyID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: tt.sign} })
			c, _ := newTestClient(t, f, tt.mode)
			err := terminate(c)
			if tt.ok && err != nil {
				t.Errorf("err %v, want success", err)
			}
			if !tt.ok && !errors.Is(err, service.ErrWeChatUnavailable) {
				t.Errorf("err %v, want ErrWeChatUnavailable", err)
			}
			if got := f.requests()[0].Header.Get("Wechatpay-Serial"); got != tt.wantSerial {
				t.Errorf("request Wechatpay-Serial %q, want %q", got, tt.wantSerial)
			}
		})
	}
}

func TestSetCertificatesRotates(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signRotated} })
	c, _ := newTestClient(t, f, func(cfg *Config) { cfg.MaxAttempts = 1 })
	if err := terminate(c); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Fatalf("before rotation: err %v, want ErrWeChatUnavailable", err)
	}
	if err := c.Keys().SetCertificates([]*x509.Certificate{platformCert, rotatedCert}); err != nil {
		t.Fatal(err)
	}
	if err := terminate(c); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got := f.requests()[1].Header.Get("Wechatpay-Serial"); got != rotatedSerial {
		t.Errorf("announced serial %q, want the newest certificate %q", got, rotatedSerial)
	}
	if err := c.Keys().SetCertificates(nil); err == nil {
		t.Error("SetCertificates(nil) without a public key succeeded")
	}
	if err := terminate(c); err != nil {
		t.Errorf("a failed SetCertificates dropped the keys: %v", err)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(r gotRequest) fakeAnswer {
		switch {
		case strings.HasSuffix(r.Path, "-pre-entrust-sign"):
			return fakeAnswer{Status: 200, Body: `{"session_id":"S"}`}
		case strings.HasSuffix(r.Path, "/terminate"):
			return fakeAnswer{Status: 403, Body: `{"code":"CONTRACT_NOT_EXIST","message":"no"}`}
		}
		return fakeAnswer{Status: 200, Body: contractJSON}
	})
	c, rec := newTestClient(t, f, nil)
	ctx := context.Background()
	if _, err := c.Presign(ctx, fullPresign(service.ChannelMiniProgram)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.QueryContract(ctx, service.ContractQuery{Merchant: testMerchant, OutContractCode: "1005", PlanID: 66}); err != nil {
		t.Fatal(err)
	}
	_ = terminate(c)
	want := []service.WeChatCall{
		{Method: "POST", Path: "/v3/global/papay/contracts/miniprogram-pre-entrust-sign", HTTPStatus: 200, RequestID: "REQ-1", Time: testNow},
		{Method: "GET", Path: "/v3/global/papay/contracts/out-contract-code/1005", HTTPStatus: 200, RequestID: "REQ-2", Time: testNow},
		{Method: "POST", Path: "/v3/global/papay/contracts/C1/terminate", HTTPStatus: 403, Code: "CONTRACT_NOT_EXIST", RequestID: "REQ-3", Time: testNow},
	}
	if diff := cmp.Diff(want, rec.recorded()); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestRecorderFailureIsLogged(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204} })
	var logs bytes.Buffer
	rec := &fakeRecorder{err: errors.New("disk full")}
	c, err := NewClient(Config{
		BaseURL: f.srv.URL, MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey,
		PlatformCerts: []*x509.Certificate{platformCert},
	}, rec, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := terminate(c); err != nil {
		t.Fatalf("a recorder failure failed the call: %v", err)
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("recorder failure not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "termination_note") {
		t.Errorf("log contains the body: %s", logs.String())
	}
}

func TestAuditSurvivesCancelledContext(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Delay: time.Second} })
	c, rec := newTestClient(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.TerminateContract(ctx, service.TerminateRequest{Merchant: testMerchant, ContractID: "C1", TerminationNote: "n"})
	if !errors.Is(err, service.ErrWeChatUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrWeChatUnavailable wrapping the deadline", err)
	}
	if n := len(rec.recorded()); n != 1 {
		t.Errorf("%d audit records, want 1", n)
	}
}

func TestNewClientConfig(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		return Config{MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey, PlatformCerts: []*x509.Certificate{platformCert}}
	}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"public key only", func(c *Config) {
			c.PlatformCerts, c.PublicKeyID, c.PublicKey = nil, testPublicKeyID, &publicModeKey.PublicKey
		}, true},
		{"base url with slash", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/" }, true},
		{"no keys", func(c *Config) { c.PlatformCerts = nil }, false},
		{"key id without key", func(c *Config) { c.PublicKeyID = testPublicKeyID }, false},
		{"key without id", func(c *Config) { c.PublicKey = &publicModeKey.PublicKey }, false},
		{"nil certificate", func(c *Config) { c.PlatformCerts = []*x509.Certificate{nil} }, false},
		{"no mchid", func(c *Config) { c.MchID = "" }, false},
		{"no serial", func(c *Config) { c.MchCertSerial = "" }, false},
		{"no private key", func(c *Config) { c.MchPrivateKey = nil }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, false},
		{"base url with path", func(c *Config) { c.BaseURL = "https://apihk.mch.weixin.qq.com/v3" }, false},
		{"base url without scheme", func(c *Config) { c.BaseURL = "apihk.mch.weixin.qq.com" }, false},
		{"base url ftp", func(c *Config) { c.BaseURL = "ftp://apihk.mch.weixin.qq.com" }, false},
	}
	for _, tt := range tests {
		cfg := valid()
		tt.edit(&cfg)
		_, err := NewClient(cfg, &fakeRecorder{}, nil)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if _, err := NewClient(valid(), nil, nil); err == nil {
		t.Error("NewClient without a Recorder succeeded")
	}
}

func TestDefaultBaseURL(t *testing.T) {
	t.Parallel()
	c, err := NewClient(Config{MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey,
		PlatformCerts: []*x509.Certificate{platformCert}}, &fakeRecorder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != DefaultBaseURL || c.timeout != DefaultTimeout {
		t.Errorf("base %q timeout %v", c.base, c.timeout)
	}
	if c.Keys() == nil {
		t.Error("no keys")
	}
}
