package rpc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/peer"
	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
)

// fakeNames finds keys by name: "twice" and any name it lacks are
// ErrUnauthenticated (no key, or more than one), "broken" cannot tell.
type fakeNames map[string]service.APIKey

func (f fakeNames) AuthenticateName(_ context.Context, name string) (service.APIKey, error) {
	if name == "broken" {
		return service.APIKey{}, &service.Error{Kind: service.KindUnavailable, Reason: "API_KEYS_UNAVAILABLE", Message: "cannot tell"}
	}
	k, ok := f[name]
	if !ok {
		return service.APIKey{}, service.ErrUnauthenticated
	}
	return k, nil
}

// TestAuthByCertificate: with Names (PAPAYD_AUTH=mtls), a call without an
// authorization header is the key named by its client certificate's
// identity, with that key's scopes; a header, when present, decides alone;
// without Names (PAPAYD_AUTH=keys) the certificate does not authenticate.
func TestAuthByCertificate(t *testing.T) {
	t.Parallel()
	names := fakeNames{
		"spiffe://example/billing": {ID: "kbilling", Name: "spiffe://example/billing", Scopes: []service.Scope{service.ScopeChargesRead}},
	}
	get := papayv1.ChargeService_GetCharge_FullMethodName
	create := papayv1.ChargeService_CreateCharge_FullMethodName
	cases := []struct {
		name     string
		names    rpc.NameAuthenticator
		identity string
		authz    string
		method   string
		code     codes.Code
		keyID    string // of the caller the handler sees
		reason   string // the refusal counted
	}{
		{"certificate of a key", names, "spiffe://example/billing", "", get, codes.OK, "kbilling", ""},
		{"certificate, scope lacking", names, "spiffe://example/billing", "", create, codes.PermissionDenied, "", rpc.AuthScope},
		{"certificate of no key", names, "spiffe://example/nobody", "", get, codes.Unauthenticated, "", rpc.AuthRejected},
		{"certificate of a name twice", names, "twice", "", get, codes.Unauthenticated, "", rpc.AuthRejected},
		{"names cannot tell", names, "broken", "", get, codes.Unavailable, "", rpc.AuthError},
		{"no certificate, no key", names, "", "", get, codes.Unauthenticated, "", rpc.AuthMissing},
		{"certificate and a key: the key", names, "spiffe://example/billing", token(string(service.ScopeChargesWrite)), create, codes.OK, string(service.ScopeChargesWrite), ""},
		{"certificate and a bad key", names, "spiffe://example/billing", token("nobody"), get, codes.Unauthenticated, "", rpc.AuthRejected},
		{"certificate and a malformed header", names, "spiffe://example/billing", "Basic eA==", get, codes.Unauthenticated, "", rpc.AuthMalformed},
		{"keys mode: certificate alone", nil, "spiffe://example/billing", "", get, codes.Unauthenticated, "", rpc.AuthMissing},
		{"keys mode: certificate and a key", nil, "spiffe://example/billing", token(string(service.ScopeChargesRead)), get, codes.OK, string(service.ScopeChargesRead), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fails := &counts{n: map[string]int{}}
			auth := rpc.Auth{Keys: testKeys(), DefaultRate: 1e6, Failed: fails.add, Now: func() time.Time { return now }}
			if c.names != nil {
				auth.Names = c.names
			}
			ic := rpc.AuthUnary(auth, slog.New(slog.DiscardHandler))
			ctx := context.Background()
			if c.identity != "" {
				ctx = peer.WithIdentity(ctx, c.identity)
			}
			if c.authz != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", c.authz))
			}
			var caller service.Caller
			handler := func(ctx context.Context, _ any) (any, error) { caller = service.CallerFrom(ctx); return "ok", nil }
			_, err := ic(ctx, nil, &grpc.UnaryServerInfo{FullMethod: c.method}, handler)
			if got := status.Code(err); got != c.code {
				t.Fatalf("code %v (%v), want %v", got, err, c.code)
			}
			if caller.KeyID != c.keyID {
				t.Errorf("caller %+v, want key %q", caller, c.keyID)
			}
			if c.reason != "" && fails.get(c.reason) != 1 {
				t.Errorf("refusals counted %v, want one %s", fails.n, c.reason)
			}
		})
	}
}
