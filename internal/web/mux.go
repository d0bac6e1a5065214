package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Pinger reports whether the store answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Routes is what the HTTP port serves.
type Routes struct {
	Gateway http.Handler // /v1/...
	Notify  http.Handler // /wechatpay/notify
	Store   Pinger       // /healthz
	OpenAPI []byte       // /openapi.json
	// Sandbox is the sandbox control API (/sandbox/v1/...); nil in live mode.
	Sandbox http.Handler
	Metrics http.Handler // /metrics
	Log     *slog.Logger
}

// NewMux returns the HTTP port's handler.
func NewMux(r Routes) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/", r.Gateway)
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
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(r.OpenAPI)
	})
	if r.Metrics != nil {
		mux.Handle("GET /metrics", r.Metrics)
	}
	if r.Sandbox != nil {
		mux.Handle("/sandbox/v1/", r.Sandbox)
	}
	return mux
}
