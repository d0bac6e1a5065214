package tests

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// get returns the status and body of GET url.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAdminListener: the admin listener serves /metrics and pprof and
// nothing else; the HTTP port serves neither.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	admin := "http://" + p.app.AdminAddr()
	if p.app.AdminAddr() == "" || admin == p.base {
		t.Fatalf("admin listener %q, HTTP port %s", p.app.AdminAddr(), p.base)
	}
	for path, want := range map[string]string{
		"/metrics":                        "papayd_",
		"/debug/pprof/":                   "goroutine",
		"/debug/pprof/goroutine?debug=1":  "goroutine profile",
		"/debug/pprof/heap?debug=1":       "heap profile",
		"/debug/pprof/cmdline":            "",
		"/debug/pprof/profile?seconds=1":  "",
		"/debug/pprof/trace?seconds=0.01": "",
	} {
		code, body := get(t, p.http, admin+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("admin GET %s: HTTP %d, want 200 with %q", path, code, want)
		}
	}
	for _, path := range []string{"/", "/healthz", "/readyz", "/openapi.json", "/v1/health", "/sandbox/v1/contracts", "/wechatpay/notify"} {
		if code, _ := get(t, p.http, admin+path); code != http.StatusNotFound {
			t.Errorf("admin GET %s: HTTP %d, want 404", path, code)
		}
	}
	// The sandbox control API, here in sandbox mode, answers (see
	// TestSandboxControlAPIAbsentInLiveMode for live mode).
	if code := p.do(http.MethodPost, "/sandbox/v1/payers/oUser:configure", map[string]any{}, nil); code == http.StatusNotFound {
		t.Errorf("sandbox mode POST /sandbox/v1/payers/oUser:configure: HTTP %d", code)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		if code, _ := get(t, p.http, p.base+path); code != http.StatusNotFound {
			t.Errorf("HTTP port GET %s: HTTP %d, want 404", path, code)
		}
	}
}

// TestSandboxControlAPIAbsentInLiveMode: in live mode the HTTP port has no
// /sandbox/v1/ (it is 404, as any unknown path), while the REST API serves.
func TestSandboxControlAPIAbsentInLiveMode(t *testing.T) {
	t.Parallel()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Options{Credentials: creds, TimeScale: 0.0001})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	base, ca := serveWeChat(t, sb.APIHandler())
	a, err := newLive(t, liveEnv(t, creds, base, ca))
	if err != nil {
		t.Fatalf("live papayd: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c := &http.Client{}
	httpBase := "http://" + a.HTTPAddr()
	if code, _ := get(t, c, httpBase+"/v1/health"); code != http.StatusOK {
		t.Fatalf("live GET /v1/health: HTTP %d", code)
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/sandbox/v1/contracts"},
		{http.MethodPost, "/sandbox/v1/sessions/x:sign"},
		{http.MethodPost, "/sandbox/v1/payers/oUser:configure"},
		{http.MethodGet, "/sandbox/v1/"},
	} {
		r, err := http.NewRequest(req.method, httpBase+req.path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("live %s %s: HTTP %d, want 404", req.method, req.path, resp.StatusCode)
		}
	}
}
