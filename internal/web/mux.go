package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/papayd/papayd/internal/rpc"
)

// Pinger reports whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// AlwaysReady is the Readier of a Routes without one.
type AlwaysReady struct{}

// Ready returns nil.
func (AlwaysReady) Ready(context.Context) error { return nil }

// Routes is what the HTTP port serves.
type Routes struct {
	Gateway http.Handler // /v1/...
	Notify  http.Handler // /wechatpay/notify
	Store   Pinger       // /healthz: liveness (the process and the store answer)
	Ready   Readier      // /readyz: the store commits writes; nil: always ready
	OpenAPI []byte       // /openapi.json
	// Sandbox is the sandbox control API (/sandbox/v1/...); nil in live mode.
	Sandbox http.Handler
	// SignPage is the sandbox's signing page (/sandbox/sign); nil in live
	// mode. It takes HTML form posts and checks their origin itself, so
	// the Guard checks only its Host.
	SignPage http.Handler
	Log      *slog.Logger
	// Guard protects the REST API, the sandbox control API and
	// /openapi.json. /wechatpay/notify (authenticated by WeChat's
	// signature), /healthz and /readyz take any Host and Origin.
	Guard Guard
}

// RequestIDs gives each request a request id in its context (which the
// gateway's calls carry into the RPC interceptors, and the logger adds to
// every line): the caller's X-Request-Id when valid, else a new one. It is
// echoed in the X-Request-Id response header.
func RequestIDs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := rpc.RequestID(req.Header.Get(rpc.RequestIDHeader))
		w.Header().Set(rpc.RequestIDHeader, id)
		h.ServeHTTP(w, req.WithContext(rpc.WithRequestID(req.Context(), id)))
	})
}

// NewMux returns the HTTP port's handler, every request with a request id
// (RequestIDs).
func NewMux(r Routes) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", r.Guard.Wrap(r.Gateway))
	mux.Handle("/wechatpay/notify", r.Notify)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := r.Store.Ping(ctx); err != nil {
			r.Log.ErrorContext(ctx, "health check failed", "error", err.Error())
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_SERVING"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "SERVING"})
	})
	ready := &readiness{r: r.Ready, now: time.Now}
	if ready.r == nil {
		ready.r = AlwaysReady{}
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := ready.check(ctx); err != nil {
			r.Log.ErrorContext(ctx, "readiness check failed", "error", err.Error())
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "NOT_SERVING", "reason": "STORE_CANNOT_COMMIT"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "SERVING"})
	})
	mux.Handle("GET /openapi.json", r.Guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.OpenAPI)
	})))
	if r.Sandbox != nil {
		mux.Handle("/sandbox/v1/", r.Guard.Wrap(r.Sandbox))
	}
	if r.SignPage != nil {
		mux.Handle("/sandbox/sign", r.Guard.WrapHost(r.SignPage))
	}
	return RequestIDs(mux)
}

// NewAdminMux returns the admin listener's handler: metrics at /metrics and
// the runtime profiles of net/http/pprof under /debug/pprof/, and nothing
// else. It is served apart from the HTTP port, on a private address.
func NewAdminMux(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
