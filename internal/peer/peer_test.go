package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
)

var (
	byURI = &x509.Certificate{Subject: pkix.Name{CommonName: "billing"}, URIs: []*url.URL{{Scheme: "spiffe", Host: "papayd.test", Path: "/billing"}}}
	byCN  = &x509.Certificate{Subject: pkix.Name{CommonName: "billing-cn"}}
)

func verifiedState(c *x509.Certificate) *tls.ConnectionState {
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
}

// cases: a verified chain names the caller (URI SAN, else CN); no TLS, or a
// certificate presented but not verified, names nobody.
var cases = []struct {
	name  string
	state *tls.ConnectionState
	want  string
}{
	{"URI SAN", verifiedState(byURI), "spiffe://papayd.test/billing"},
	{"common name", verifiedState(byCN), "billing-cn"},
	{"no TLS", nil, ""},
	{"TLS without a client certificate", &tls.ConnectionState{}, ""},
	{"presented, not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{byURI}}, ""},
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	for _, c := range cases {
		var got string
		var ok bool
		h := HTTP(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) { got, ok = Identity(req.Context()) }))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.TLS = c.state
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: Identity %q %v, want %q", c.name, got, ok, c.want)
		}
	}
}

func TestUnaryInterceptor(t *testing.T) {
	t.Parallel()
	ic := UnaryInterceptor()
	for _, c := range cases {
		ctx := context.Background()
		if c.state != nil {
			ctx = grpcpeer.NewContext(ctx, &grpcpeer.Peer{AuthInfo: credentials.TLSInfo{State: *c.state}})
		}
		var got string
		_, _ = ic(ctx, nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
			got, _ = Identity(ctx)
			return nil, nil
		})
		if got != c.want {
			t.Errorf("%s: Identity %q, want %q", c.name, got, c.want)
		}
	}
	// An in-process call (the gateway's) keeps the identity the HTTP side found.
	var got string
	_, _ = ic(WithIdentity(context.Background(), "from-http"), nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
		got, _ = Identity(ctx)
		return nil, nil
	})
	if got != "from-http" {
		t.Errorf("in-process call: Identity %q, want from-http", got)
	}
}
