// Package peer carries the identity of a caller authenticated by a TLS
// client certificate (mTLS) in a request's context, for HTTP requests and
// gRPC calls alike, so that later code (the auth interceptor) can map it to
// a key.
package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
)

type identityKey struct{}

// WithIdentity returns ctx carrying id, the verified client certificate's
// identity.
func WithIdentity(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// Identity is the identity of the verified client certificate the request
// came with, and false when it came with none (no mTLS, or an in-process
// call that did not carry one).
func Identity(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(identityKey{}).(string)
	return id, ok && id != ""
}

// CertificateIdentity names a client certificate: its first URI SAN
// (spiffe://example/ns/billing), else its subject's common name.
func CertificateIdentity(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return c.Subject.CommonName
}

// verified is the identity of the leaf of the first verified chain of
// state, "" without one. Only a chain the server verified against its
// client CAs counts, never a certificate merely presented.
func verified(state *tls.ConnectionState) string {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return ""
	}
	return CertificateIdentity(state.VerifiedChains[0][0])
}

// HTTP puts the identity of a request's verified client certificate in its
// context.
func HTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if id := verified(req.TLS); id != "" {
			req = req.WithContext(WithIdentity(req.Context(), id))
		}
		h.ServeHTTP(w, req)
	})
}

// UnaryInterceptor puts the identity of a gRPC call's verified client
// certificate in its context. A call without one (plaintext, or the
// gateway's in-process call) keeps the context it came with, and so the
// identity the HTTP side put there.
func UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if p, ok := grpcpeer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
				if id := verified(&info.State); id != "" {
					ctx = WithIdentity(ctx, id)
				}
			}
		}
		return next(ctx, req)
	}
}
