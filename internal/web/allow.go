package web

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// The methods the gateway may route; Allow lists those of a path's.
var gatewayMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

type probeKey struct{}

// probe records whether the gateway routed a probing request to a handler.
type probe struct{ matched bool }

func isProbe(ctx context.Context) bool { _, ok := ctx.Value(probeKey{}).(*probe); return ok }

// probeMiddleware runs first around every gateway handler: a probing
// request is only noted as routed, never handled (no body is read, no
// service is called).
func probeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := r.Context().Value(probeKey{}).(*probe); ok {
			p.matched = true
			return
		}
		next(w, r, params)
	}
}

// allowedMethods returns the methods mux routes r's path for, by routing a
// body-less probe of each through it; probeMiddleware stops each probe
// before its handler, and routingError writes nothing for it.
func allowedMethods(mux http.Handler) func(*http.Request) []string {
	return func(r *http.Request) []string {
		var allow []string
		for _, m := range gatewayMethods {
			if m == r.Method {
				continue
			}
			p := &probe{}
			q := r.Clone(context.WithValue(r.Context(), probeKey{}, p))
			q.Method, q.Body, q.ContentLength, q.Header = m, http.NoBody, 0, http.Header{}
			mux.ServeHTTP(discard{}, q)
			if p.matched {
				allow = append(allow, m)
			}
		}
		return allow
	}
}

// discard is a ResponseWriter that drops everything.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
