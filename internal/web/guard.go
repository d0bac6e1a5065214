package web

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
)

// MaxRequestBytes caps a REST request body. papayd's requests are a few
// hundred bytes; a larger body is refused (413) after at most this much
// is read.
const MaxRequestBytes = 1 << 20

// Guard is what the REST API (/v1/, /sandbox/v1/, /openapi.json) checks
// before a request reaches a handler, against CSRF from browser pages and
// DNS rebinding:
//   - the Host header must be one of AllowedHosts (403 HOST_NOT_ALLOWED);
//   - a request with an Origin header must come from one of CORSOrigins
//     (403 ORIGIN_NOT_ALLOWED); those get CORS answers, preflight included;
//   - a body (or a Content-Type on a method other than GET and HEAD) must
//     be application/json or application/*+json (415
//     UNSUPPORTED_MEDIA_TYPE), and at most MaxRequestBytes (413
//     REQUEST_TOO_LARGE).
type Guard struct {
	// AllowedHosts are the Host headers served: "host:port" matches
	// exactly, "host" matches on any port, "*" matches any host.
	AllowedHosts []string
	// CORSOrigins are the browser origins ("https://console.example")
	// allowed to call the API.
	CORSOrigins []string
}

// The CORS answers to an allowed origin.
const (
	corsMethods = "GET, POST, PUT, PATCH, DELETE"
	corsHeaders = "Content-Type, Authorization, X-Request-Id"
	corsMaxAge  = "600"
)

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	hosts := g.hosts()
	origins := make(map[string]bool, len(g.CORSOrigins))
	for _, o := range g.CORSOrigins {
		origins[strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(hosts, r.Host) {
			refuse(w, r, refuseHost)
			return
		}
		if vals := r.Header.Values("Origin"); len(vals) > 0 {
			if len(vals) > 1 || !origins[strings.ToLower(vals[0])] {
				refuse(w, r, refuseOrigin)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", vals[0])
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", corsMethods)
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		hasBody := r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
		ct := r.Header.Get("Content-Type")
		if (hasBody || (ct != "" && r.Method != http.MethodGet && r.Method != http.MethodHead)) && !isJSON(ct) {
			refuse(w, r, refuseMediaType)
			return
		}
		if hasBody {
			if r.ContentLength > MaxRequestBytes {
				refuse(w, r, refuseTooLarge)
				return
			}
			// MaxBytesReader stops at the cap and has the server close the
			// connection rather than drain the rest.
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					refuse(w, r, refuseTooLarge)
				} else {
					refuse(w, r, refuseUnreadable)
				}
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}

// WrapHost returns next behind the Host check alone (against DNS
// rebinding): for an HTML page that takes form posts and checks their
// origin itself.
func (g Guard) WrapHost(next http.Handler) http.Handler {
	hosts := g.hosts()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(hosts, r.Host) {
			refuse(w, r, refuseHost)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hosts is AllowedHosts as a set.
func (g Guard) hosts() map[string]bool {
	hosts := make(map[string]bool, len(g.AllowedHosts))
	for _, h := range g.AllowedHosts {
		hosts[strings.ToLower(strings.TrimSpace(h))] = true
	}
	return hosts
}

// isJSON reports whether a Content-Type is application/json or
// application/*+json, parameters (charset) aside.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// hostAllowed reports whether the Host header host matches an entry.
func hostAllowed(allowed map[string]bool, host string) bool {
	host = strings.ToLower(host)
	if allowed["*"] || allowed[host] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		return allowed[h]
	}
	return false
}

// DefaultAllowedHosts is the Host list when none is configured: the HTTP
// listener's address, and localhost, 127.0.0.1 and [::1] on any port.
func DefaultAllowedHosts(listenAddr string) []string {
	return []string{listenAddr, "localhost", "127.0.0.1", "[::1]"}
}
