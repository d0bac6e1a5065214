package sandbox_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const (
	planID      = 123
	contractsV3 = "/v3/global/papay/contracts"
	waitTimeout = 10 * time.Second
)

var (
	sharedOnce  sync.Once
	sharedCreds *sandbox.Credentials
	sharedErr   error
)

// testCredentials returns credentials shared by all tests (key generation is slow under -race).
func testCredentials(t *testing.T) *sandbox.Credentials {
	t.Helper()
	sharedOnce.Do(func() { sharedCreds, sharedErr = sandbox.NewCredentials() })
	if sharedErr != nil {
		t.Fatalf("NewCredentials: %v", sharedErr)
	}
	return sharedCreds
}

// env is a sandbox served on 127.0.0.1 with a wechatpay-go client in certificate mode.
type env struct {
	sb         *sandbox.Sandbox
	creds      *sandbox.Credentials
	apiURL     string
	controlURL string
	client     *core.Client
	httpClient *http.Client
	sinkURL    string // a local notification endpoint that acknowledges everything
}

func newEnv(t *testing.T, opts sandbox.Options) *env {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = testCredentials(t)
	}
	if opts.TimeScale == 0 {
		opts.TimeScale = 0.0001
	}
	// Servers close after the sandbox (cleanups run last-in first-out).
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	api := httptest.NewServer(sb.APIHandler())
	t.Cleanup(api.Close)
	control := httptest.NewServer(sb.ControlHandler())
	t.Cleanup(control.Close)
	t.Cleanup(sb.Close)
	e := &env{sb: sb, creds: opts.Credentials, apiURL: api.URL, controlURL: control.URL,
		httpClient: api.Client(), sinkURL: sink.URL + "/notify"}
	e.client = sdkClient(t, e.creds, e.httpClient,
		option.WithWechatPayCertificate([]*x509.Certificate{e.creds.PlatformCert}))
	return e
}

// sdkClient builds a wechatpay-go client with the merchant credential plus verification opts.
func sdkClient(t *testing.T, c *sandbox.Credentials, hc *http.Client, opts ...core.ClientOption) *core.Client {
	t.Helper()
	all := append([]core.ClientOption{
		option.WithMerchantCredential(c.MchID, c.MerchantSerial, c.MerchantKey),
		option.WithHTTPClient(hc),
	}, opts...)
	client, err := core.NewClient(context.Background(), all...)
	if err != nil {
		t.Fatalf("core.NewClient: %v", err)
	}
	return client
}

func certVerifier(c *sandbox.Credentials) auth.Verifier {
	return verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509.Certificate{c.PlatformCert}))
}

// presignBody is a valid institutional pre-sign body for every channel's required fields.
func (e *env) presignBody(code, openid, notifyURL string) map[string]any {
	return map[string]any{
		"sp_appid": e.creds.SPAppID, "sub_mchid": e.creds.SubMchID, "sub_appid": e.creds.SubAppID,
		"plan_id": planID, "out_contract_code": code, "user_display_name": "Zhang San",
		"success_notify_url": notifyURL, "openid": openid, "user_client_ip": "119.145.83.6",
	}
}

// presignAnswer calls a pre-sign endpoint through the SDK and returns its
// answer.
func (e *env) presignAnswer(t *testing.T, channel string, body map[string]any) map[string]string {
	t.Helper()
	res, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/"+channel+"-pre-entrust-sign", body)
	if err != nil {
		t.Fatalf("pre-sign %s: %v", channel, err)
	}
	var out map[string]string
	if err := core.UnMarshalResponse(res.Response, &out); err != nil {
		t.Fatalf("pre-sign %s response: %v", channel, err)
	}
	return out
}

// presign calls a pre-sign endpoint through the SDK and returns the session id.
func (e *env) presign(t *testing.T, channel string, body map[string]any) string {
	t.Helper()
	out := e.presignAnswer(t, channel, body)
	if id := out["session_id"]; id != "" {
		return id
	}
	for _, k := range []string{"sign_url", "show_code_url"} {
		if id, ok := sandbox.SessionIDFromURL(out[k]); ok {
			return id
		}
	}
	t.Fatalf("pre-sign %s: no session in %v", channel, out)
	return ""
}

// signedContract pre-signs through the mini program and lets the user sign.
func (e *env) signedContract(t *testing.T, code, openid, notifyURL string) sandbox.Contract {
	t.Helper()
	id := e.presign(t, "miniprogram", e.presignBody(code, openid, notifyURL))
	c, err := e.sb.SignSession(id, sandbox.User{})
	if err != nil {
		t.Fatalf("SignSession: %v", err)
	}
	return c
}

// control calls the control API and decodes the JSON answer.
func (e *env) control(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.controlURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// apiError asserts that err is a wechatpay-go APIError with the status and code.
func apiError(t *testing.T, err error, status int, code string) *core.APIError {
	t.Helper()
	apiErr, ok := err.(*core.APIError)
	if !ok {
		t.Fatalf("err = %v, want *core.APIError %d %s", err, status, code)
	}
	if apiErr.StatusCode != status || apiErr.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", apiErr.StatusCode, apiErr.Code, apiErr.Message, status, code)
	}
	return apiErr
}

// notice is one notification as the receiver parsed it with the SDK.
type notice struct {
	req     *notify.Request
	content map[string]any
	header  http.Header
	err     error
	at      time.Time
}

// receiver is a merchant notification endpoint that parses with wechatpay-go's handler
// and answers the scripted statuses, then 200.
type receiver struct {
	URL      string
	got      chan notice
	mu       sync.Mutex
	statuses []int
}

func newReceiver(t *testing.T, c *sandbox.Credentials, v auth.Verifier, statuses ...int) *receiver {
	t.Helper()
	h, err := notify.NewRSANotifyHandler(string(c.APIv3Key), v)
	if err != nil {
		t.Fatalf("NewRSANotifyHandler: %v", err)
	}
	r := &receiver{got: make(chan notice, 64), statuses: statuses}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var content map[string]any
		n, err := h.ParseNotifyRequest(req.Context(), req, &content)
		r.got <- notice{req: n, content: content, header: req.Header.Clone(), err: err, at: time.Now()}
		status := http.StatusOK
		r.mu.Lock()
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		if err != nil {
			status = http.StatusBadRequest
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/papay/notify"
	return r
}

// next returns the next notification, which must have parsed.
func (r *receiver) next(t *testing.T) notice {
	t.Helper()
	select {
	case n := <-r.got:
		if n.err != nil {
			t.Fatalf("notification rejected by the SDK: %v", n.err)
		}
		return n
	case <-time.After(waitTimeout):
		t.Fatal("no notification received")
		return notice{}
	}
}

// ctx returns a context bounded by waitTimeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// clock is an adjustable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
