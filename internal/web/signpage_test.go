package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSignPageRoute: /sandbox/sign checks the Host alone, so a form post
// (not JSON) with the page's own Origin reaches the page, which checks
// its origin itself; the control API keeps the whole Guard.
func TestSignPageRoute(t *testing.T) {
	t.Parallel()
	reached := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) })
	}
	mux := NewMux(Routes{
		Gateway: http.NotFoundHandler(), Notify: http.NotFoundHandler(), Store: &fakeStore{}, OpenAPI: []byte("{}"),
		Sandbox: reached("control"), SignPage: reached("page"),
		Log: slog.New(slog.DiscardHandler), Guard: Guard{AllowedHosts: DefaultAllowedHosts("127.0.0.1:8080")},
	})
	for _, tc := range []struct {
		name, method, target, host string
		status                     int
		body                       string
	}{
		{"page", "GET", "/sandbox/sign?os_session_id=s", "127.0.0.1:8080", 200, "page"},
		{"form post", "POST", "/sandbox/sign", "localhost:8080", 200, "page"},
		{"rebound name", "GET", "/sandbox/sign?os_session_id=s", "evil.example:8080", 403, ""},
		{"rebound form post", "POST", "/sandbox/sign", "evil.example", 403, ""},
		{"form post to the control API", "POST", "/sandbox/v1/sessions/s:sign", "127.0.0.1:8080", 403, ""},
		{"below the page", "GET", "/sandbox/sign/x", "127.0.0.1:8080", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Host = tc.host
			if tc.method == http.MethodPost {
				req = httptest.NewRequest(tc.method, tc.target, strings.NewReader("action=agree"))
				req.Host = tc.host
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", "http://"+tc.host)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.status || (tc.body != "" && rec.Body.String() != tc.body) {
				t.Fatalf("HTTP %d %q, want %d %q", rec.Code, rec.Body, tc.status, tc.body)
			}
		})
	}
}
