package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeStore struct {
	pingErr error
	ready   atomic.Int64 // calls
	fail    atomic.Bool
}

func (f *fakeStore) Ping(context.Context) error { return f.pingErr }

func (f *fakeStore) Ready(context.Context) error {
	f.ready.Add(1)
	if f.fail.Load() {
		return errors.New("database or disk is full")
	}
	return nil
}

// endless yields n bytes of an unterminated JSON string, counting reads.
type endless struct{ n, read int64 }

func (r *endless) Read(b []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), r.n-r.read)]
	for i := range b {
		b[i] = 'a'
	}
	r.read += int64(len(b))
	return len(b), nil
}

func newTestMux(store *fakeStore, api http.Handler) http.Handler {
	return NewMux(Routes{
		Gateway: api, Notify: http.NotFoundHandler(), Store: store, Ready: store, OpenAPI: []byte("{}"),
		Log: slog.New(slog.DiscardHandler), Guard: Guard{AllowedHosts: DefaultAllowedHosts("127.0.0.1:8080")},
	})
}

// TestBodyCap: a 100 MB body is refused with 413 and the error JSON after
// reading no more than the cap (and one byte), whether or not it declares
// its length.
func TestBodyCap(t *testing.T) {
	t.Parallel()
	var reached atomic.Bool
	mux := newTestMux(&fakeStore{}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
	for _, declared := range []bool{false, true} {
		body := &endless{n: 100 << 20}
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/v1/charges", body)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		if declared {
			req.ContentLength = body.n
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), `"reason":"REQUEST_TOO_LARGE"`) {
			t.Fatalf("declared=%v: HTTP %d %s", declared, rec.Code, rec.Body)
		}
		if body.read > MaxRequestBytes+1 {
			t.Fatalf("declared=%v: read %d bytes of the body, cap %d", declared, body.read, MaxRequestBytes)
		}
	}
	if reached.Load() {
		t.Fatal("the API handler saw an oversized body")
	}
	// At the cap, the body is passed on whole.
	var got int
	mux = newTestMux(&fakeStore{}, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = len(b)
	}))
	req := httptest.NewRequest(http.MethodPost, "http://localhost/v1/charges", &endless{n: MaxRequestBytes})
	req.Header.Set("Content-Type", "application/json")
	mux.ServeHTTP(httptest.NewRecorder(), req)
	if got != MaxRequestBytes {
		t.Fatalf("the API read %d bytes of a %d-byte body", got, MaxRequestBytes)
	}
}

// TestReadyz: /readyz fails while the store cannot commit, caches its
// answer for about a second, and /healthz stays liveness.
func TestReadyz(t *testing.T) {
	t.Parallel()
	store := &fakeStore{}
	mux := newTestMux(store, http.NotFoundHandler())
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://10.0.0.7:8080"+path, nil))
		var out struct{ Status string }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: %q: %v", path, rec.Body, err)
		}
		return rec.Code, out.Status
	}
	if code, st := get("/readyz"); code != 200 || st != "SERVING" {
		t.Fatalf("/readyz: %d %s", code, st)
	}
	for range 50 {
		get("/readyz")
	}
	if n := store.ready.Load(); n != 1 {
		t.Fatalf("51 probes within a second ran %d store writes, want 1", n)
	}
	store.fail.Store(true)
	time.Sleep(readyCacheFor + 50*time.Millisecond)
	if code, st := get("/readyz"); code != http.StatusServiceUnavailable || st != "NOT_SERVING" {
		t.Fatalf("/readyz with a full disk: %d %s", code, st)
	}
	if code, st := get("/healthz"); code != 200 || st != "SERVING" {
		t.Fatalf("/healthz with a full disk: %d %s", code, st)
	}
}

// TestGuardUnit covers what the end-to-end test does not: nothing reaches
// the API unless the guard lets it.
func TestGuardUnit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, host, ct, origin, body string
		status                               int
	}{
		{"GET, no body, no type", "GET", "127.0.0.1:8080", "", "", "", 200},
		{"POST without a body or type", "POST", "localhost:9", "", "", "", 200},
		{"POST form without a body", "POST", "localhost", "application/x-www-form-urlencoded", "", "", 415},
		{"problem+json", "POST", "[::1]:8080", "application/problem+json", "", "{}", 200},
		{"bad media type", "POST", "localhost", "application/json;;", "", "{}", 415},
		{"listen address", "GET", "127.0.0.1:8080", "", "", "", 200},
		{"unlisted port of a host:port entry", "GET", "0.0.0.0:9", "", "", "", 403},
		{"rebound name", "GET", "evil.example:8080", "", "", "", 403},
		{"empty host", "GET", "", "", "", "", 403},
		{"two Origins", "GET", "localhost", "", "x", "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := Guard{AllowedHosts: DefaultAllowedHosts("0.0.0.0:8080")}.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, "/v1/x", body)
			req.Host = tc.host
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			if tc.origin != "" {
				req.Header.Add("Origin", "http://a.example")
				req.Header.Add("Origin", "http://b.example")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("HTTP %d %s, want %d", rec.Code, rec.Body, tc.status)
			}
		})
	}
}
