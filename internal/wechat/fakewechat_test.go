package wechat

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// signing says how the fake signs an answer.
type signing int

const (
	signPlatform  signing = iota // platformKey, serial platformSerial
	signPublicKey                // publicModeKey, serial testPublicKeyID
	signRotated                  // publicModeKey, serial rotatedSerial
	signNone                     // no Wechatpay-* headers
	signForged                   // platformSerial, but signed with merchantKey
	signStale                    // platformKey, timestamp 10 minutes old
)

// fakeAnswer is what the fake WeChat answers to one request.
type fakeAnswer struct {
	Status  int
	Body    string
	Sign    signing
	Delay   time.Duration
	Headers map[string]string
	// Reset drops the connection (TCP RST) instead of answering.
	Reset bool
}

// gotRequest is a request as the fake received it.
type gotRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// fakeWeChat is a WeChat Pay stand-in: it checks each request's
// Authorization signature and answers with signed responses.
type fakeWeChat struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(gotRequest) fakeAnswer

	mu   sync.Mutex
	reqs []gotRequest
}

func newFakeWeChat(t *testing.T, answer func(gotRequest) fakeAnswer) *fakeWeChat {
	t.Helper()
	f := &fakeWeChat{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWeChat) requests() []gotRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]gotRequest(nil), f.reqs...)
}

func (f *fakeWeChat) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake wechat: read body: %v", err)
		return
	}
	got := gotRequest{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	f.mu.Lock()
	f.reqs = append(f.reqs, got)
	requestID := "REQ-" + strconv.Itoa(len(f.reqs))
	f.mu.Unlock()
	if err := checkAuthorization(r, body); err != nil {
		f.t.Errorf("fake wechat: %s %s: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	a := f.answer(got)
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if a.Reset {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			f.t.Errorf("fake wechat: hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
		return
	}
	for k, v := range a.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Request-ID", requestID)
	if a.Body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	signAnswer(w.Header(), a.Sign, []byte(a.Body), time.Now())
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

// signAnswer sets the Wechatpay-* headers over "ts\nnonce\nbody\n".
func signAnswer(h http.Header, s signing, body []byte, now time.Time) {
	key, serial := platformKey, platformSerial
	switch s {
	case signNone:
		return
	case signPublicKey:
		key, serial = publicModeKey, testPublicKeyID
	case signRotated:
		key, serial = publicModeKey, rotatedSerial
	case signForged:
		key = merchantKey
	case signStale:
		now = now.Add(-10 * time.Minute)
	}
	ts, nonce := strconv.FormatInt(now.Unix(), 10), "fakeNonce"+strconv.FormatInt(now.UnixNano()%1e6, 10)
	h.Set("Wechatpay-Serial", serial)
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", sign(key, ts+"\n"+nonce+"\n"+string(body)+"\n"))
}

func sign(key *rsa.PrivateKey, msg string) string {
	sum := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// checkAuthorization verifies the merchant's request signature over
// "METHOD\nURI\nts\nnonce\nbody\n".
func checkAuthorization(r *http.Request, body []byte) error {
	const scheme = "WECHATPAY2-SHA256-RSA2048 "
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, scheme) {
		return fmt.Errorf("authorization scheme: %q", h)
	}
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(h, scheme), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = strings.Trim(v, `"`)
	}
	if params["mchid"] != testMchID || params["serial_no"] != testMchSerial {
		return fmt.Errorf("authorization names mchid %q serial %q", params["mchid"], params["serial_no"])
	}
	msg := r.Method + "\n" + r.URL.RequestURI() + "\n" + params["timestamp"] + "\n" + params["nonce_str"] + "\n" + string(body) + "\n"
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(msg))
	return rsa.VerifyPKCS1v15(&merchantKey.PublicKey, crypto.SHA256, sum[:], sig)
}

// fakeRecorder keeps the audit records.
type fakeRecorder struct {
	mu    sync.Mutex
	calls []service.WeChatCall
	err   error
}

func (r *fakeRecorder) RecordWeChatCall(ctx context.Context, c service.WeChatCall) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	return r.err
}

func (r *fakeRecorder) recorded() []service.WeChatCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]service.WeChatCall(nil), r.calls...)
}

// testNow is the audit clock of test clients.
var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testAttempts is MaxAttempts of test clients.
const testAttempts = 3

// noSleep is the Sleep of test clients: retries follow at once.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// newTestClient returns a certificate-mode client of f that retries
// testAttempts times without pausing; edit changes its config first.
func newTestClient(t *testing.T, f *fakeWeChat, edit func(*Config)) (*Client, *fakeRecorder) {
	t.Helper()
	cfg := Config{
		BaseURL: f.srv.URL, MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey,
		PlatformCerts: []*x509.Certificate{platformCert}, Timeout: 5 * time.Second,
		Now: func() time.Time { return testNow }, MaxAttempts: testAttempts, Sleep: noSleep,
	}
	if edit != nil {
		edit(&cfg)
	}
	rec := &fakeRecorder{}
	c, err := NewClient(cfg, rec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c, rec
}
