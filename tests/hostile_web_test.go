package tests

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
)

// rawREST sends one request to papayd's HTTP port as a hostile client
// would: body, Content-Type, Host and Origin as given. It returns the
// answer's status, headers and decoded error body (if any).
func (p *papayd) rawREST(method, path, contentType, host, origin string, body io.Reader, hdr http.Header) (int, http.Header, restError) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e restError
	if resp.StatusCode >= 400 && len(raw) > 0 && !strings.HasPrefix(path, "/wechatpay/") {
		if err := json.Unmarshal(raw, &e); err != nil {
			p.t.Fatalf("%s %s: HTTP %d, answer %q is not the error JSON: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, resp.Header, e
}

// TestHostileCSRFAndRebinding: a browser page on another origin (CSRF), or
// one whose name was rebound to 127.0.0.1, cannot drive the REST API.
func TestHostileCSRFAndRebinding(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oHostile")
	port := p.app.HTTPAddr()[strings.LastIndex(p.app.HTTPAddr(), ":"):]
	charge := func(no string) []byte {
		b, err := protojson.Marshal(chargeReq(no, a.GetContractId(), 100))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, no, contentType, host, origin string
		status                              int
		reason                              string
	}{
		{"the reported attack", "CSRF-1", "text/plain", "attacker.example", "http://attacker.example", 403, "HOST_NOT_ALLOWED"},
		{"rebound name, no Origin", "CSRF-2", "application/json", "attacker.example" + port, "", 403, "HOST_NOT_ALLOWED"},
		{"form post", "CSRF-3", "application/x-www-form-urlencoded", "", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"text/plain simple request", "CSRF-4", "text/plain;charset=UTF-8", "", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"no Content-Type", "CSRF-5", "", "", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"foreign Origin", "CSRF-6", "application/json", "", "http://attacker.example", 403, "ORIGIN_NOT_ALLOWED"},
		{"null Origin", "CSRF-7", "application/json", "", "null", 403, "ORIGIN_NOT_ALLOWED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := p.rawREST(http.MethodPost, "/v1/charges", tc.contentType, tc.host, tc.origin, bytes.NewReader(charge(tc.no)), nil)
			if code != tc.status || e.reason() != tc.reason || e.Message == "" {
				t.Fatalf("HTTP %d %+v, want %d %s", code, e, tc.status, tc.reason)
			}
			if c := p.do(http.MethodGet, "/v1/charges/"+tc.no, nil, nil); c != http.StatusNotFound {
				t.Fatalf("the refused request made charge %s (GET: HTTP %d)", tc.no, c)
			}
		})
	}
	// The hosts papayd answers to by default, and the JSON media types.
	for i, tc := range []struct{ host, contentType string }{
		{"localhost" + port, "application/json"},
		{"localhost", "application/json; charset=utf-8"},
		{"127.0.0.1" + port, "application/merge-patch+json"},
		{"127.0.0.1", "Application/JSON"},
		{"[::1]" + port, "application/json"},
		{"[::1]", "application/json"},
	} {
		no := "OK-HOST-" + string(rune('A'+i))
		if code, _, e := p.rawREST(http.MethodPost, "/v1/charges", tc.contentType, tc.host, "", bytes.NewReader(charge(no)), nil); code != http.StatusOK {
			t.Fatalf("Host %q, %s: HTTP %d %+v, want 200", tc.host, tc.contentType, code, e)
		}
	}
	// The sandbox control API and the OpenAPI document are guarded too.
	if code, _, e := p.rawREST(http.MethodGet, "/openapi.json", "", "attacker.example", "", nil, nil); code != 403 || e.reason() != "HOST_NOT_ALLOWED" {
		t.Fatalf("/openapi.json from a foreign Host: HTTP %d %+v", code, e)
	}
	if code, _, e := p.rawREST(http.MethodPost, "/sandbox/v1/sessions/x:sign", "text/plain", "", "", strings.NewReader("{}"), nil); code != 415 || e.reason() != "UNSUPPORTED_MEDIA_TYPE" {
		t.Fatalf("sandbox control API with text/plain: HTTP %d %+v", code, e)
	}
	// WeChat's callbacks and probes take any Host and Origin.
	if code, _, _ := p.rawREST(http.MethodPost, "/wechatpay/notify", "application/json", "papayd.example.com", "https://x.example", strings.NewReader("{}"), nil); code != http.StatusUnauthorized {
		t.Fatalf("unsigned callback from another Host: HTTP %d, want 401 (its signature decides)", code)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _, e := p.rawREST(http.MethodGet, path, "", "10.1.2.3:8080", "", nil, nil); code != http.StatusOK {
			t.Fatalf("%s from a probe's Host: HTTP %d %+v", path, code, e)
		}
	}
}

// TestHostileCORS: an origin listed in PAPAYD_CORS_ORIGINS gets proper
// CORS answers, preflight included; others are refused.
func TestHostileCORS(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{
		"PAPAYD_CORS_ORIGINS":  "https://console.example, http://localhost:3000",
		"PAPAYD_ALLOWED_HOSTS": "papayd.internal:8443,127.0.0.1",
	})
	const origin = "https://console.example"
	hdr := http.Header{"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}
	code, h, e := p.rawREST(http.MethodOptions, "/v1/charges", "", "", origin, nil, hdr)
	if code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight: HTTP %d %v %+v", code, h, e)
	}
	code, h, e = p.rawREST(http.MethodGet, "/v1/charges/NOPE", "", "", origin, nil, nil)
	if code != http.StatusNotFound || h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Vary"), "Origin") {
		t.Fatalf("GET from an allowed origin: HTTP %d %v %+v", code, h, e)
	}
	if code, h, e := p.rawREST(http.MethodOptions, "/v1/charges", "", "", "https://evil.example", nil, hdr); code != 403 ||
		e.reason() != "ORIGIN_NOT_ALLOWED" || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: HTTP %d %v %+v", code, h, e)
	}
	// PAPAYD_ALLOWED_HOSTS replaces the default list.
	if code, _, e := p.rawREST(http.MethodGet, "/v1/charges/NOPE", "", "papayd.internal:8443", "", nil, nil); code != http.StatusNotFound {
		t.Fatalf("listed Host: HTTP %d %+v", code, e)
	}
	if code, _, e := p.rawREST(http.MethodGet, "/v1/charges/NOPE", "", "localhost", "", nil, nil); code != 403 || e.reason() != "HOST_NOT_ALLOWED" {
		t.Fatalf("unlisted Host: HTTP %d %+v", code, e)
	}
}

// countingReader yields n bytes of a JSON string that never ends and
// counts what was read from it.
type countingReader struct {
	n, read int64
	total   *atomic.Int64
}

func (r *countingReader) Read(b []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), r.n-r.read)]
	for i := range b {
		b[i] = 'a'
	}
	if r.read == 0 && len(b) > 16 {
		copy(b, `{"description":"`)
	}
	r.read += int64(len(b))
	r.total.Add(int64(len(b)))
	return len(b), nil
}

// TestHostileHugeBody: a 100 MB REST body is refused with 413 after at most
// about the 1 MiB cap (plus what the sockets buffer), not read whole.
func TestHostileHugeBody(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	const size = 100 << 20
	for _, declared := range []bool{false, true} {
		var sent atomic.Int64
		body := &countingReader{n: size, total: &sent}
		req, err := http.NewRequest(http.MethodPost, p.base+"/v1/charges", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1 // chunked: only reading tells the size
		if declared {
			req.ContentLength = size
		}
		resp, err := p.http.Do(req)
		if err != nil {
			// The server may close the connection while the client still
			// writes; what matters is that it did not read it all.
			if got := sent.Load(); got > 32<<20 {
				t.Fatalf("declared=%v: %v after the server consumed %d bytes", declared, err, got)
			}
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e restError
		_ = json.Unmarshal(raw, &e)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || e.reason() != "REQUEST_TOO_LARGE" {
			t.Fatalf("declared=%v: HTTP %d %s, want 413 REQUEST_TOO_LARGE (client sent %d bytes)", declared, resp.StatusCode, raw, sent.Load())
		}
		if got := sent.Load(); got > 32<<20 {
			t.Fatalf("declared=%v: the server consumed %d bytes of a %d-byte body", declared, got, size)
		}
	}
	// The callback's own cap is kept.
	if code, _ := p.postNotification(http.Header{"Content-Type": {"application/json"}}, bytes.Repeat([]byte("x"), 65<<10)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized callback: HTTP %d, want 413", code)
	}
}

// TestHostileMethodNotAllowed: a known path with another method answers 405
// with Allow and the error JSON, not 501.
func TestHostileMethodNotAllowed(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/charges/T1", "GET"},
		{http.MethodPut, "/v1/agreements:presign", "POST"},
		{http.MethodDelete, "/v1/charges", "GET, POST"},
		// GET routes it too: to GetAgreement of contract "W1:terminate".
		{http.MethodPatch, "/v1/agreements/W1:terminate", "GET, POST"},
	} {
		code, h, e := p.rawREST(tc.method, tc.path, "", "", "", nil, nil)
		if code != http.StatusMethodNotAllowed || h.Get("Allow") != tc.allow || e.reason() != "METHOD_NOT_ALLOWED" || e.Message == "" {
			t.Errorf("%s %s: HTTP %d Allow %q %+v, want 405 Allow %q METHOD_NOT_ALLOWED", tc.method, tc.path, code, h.Get("Allow"), e, tc.allow)
		}
	}
	if code, _, e := p.rawREST(http.MethodDelete, "/v1/nothing-here", "", "", "", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown path: HTTP %d %+v, want 404", code, e)
	}
}

// TestHostileReadyz: /readyz answers SERVING while the store commits, and
// /healthz stays a liveness probe.
func TestHostileReadyz(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	var out struct {
		Status string `json:"status"`
	}
	for _, path := range []string{"/readyz", "/healthz"} {
		if code := p.do(http.MethodGet, path, nil, &out); code != http.StatusOK || out.Status != "SERVING" {
			t.Fatalf("%s: HTTP %d %+v", path, code, out)
		}
	}
	// The readiness probe's write leaves nothing behind.
	dbh, err := sql.Open("sqlite", "file:"+filepath.Join(p.dataDir, "papayd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer dbh.Close()
	var n int
	if err := dbh.QueryRow("SELECT count(*) FROM intents").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d intents after probes (%v)", n, err)
	}
}
