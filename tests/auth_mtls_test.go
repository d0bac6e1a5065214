package tests

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/app"
	"github.com/papayd/papayd/internal/service"
)

// TestAuthMTLSCertificateIsTheKeyOfItsName: with PAPAYD_AUTH=mtls, a call
// without a key is the key its client certificate's URI SAN names, with
// that key's scopes, over gRPC and REST; a certificate naming no key (or
// only a revoked one) is refused as unauthenticated.
func TestAuthMTLSCertificateIsTheKeyOfItsName(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	dataDir := t.TempDir()
	ctx := context.Background()
	keys := app.Config{DataDir: dataDir}
	read := []service.Scope{service.ScopeChargesRead, service.ScopeAgreementsRead}
	if err := app.CreateKey(ctx, keys, service.KeyInput{Name: "spiffe://papayd.test/billing", Scopes: read}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var created strings.Builder
	if err := app.CreateKey(ctx, keys, service.KeyInput{Name: "spiffe://papayd.test/gone", Scopes: read}, &created); err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(created.String(), "id:")), "\n")
	if err := app.RevokeKey(ctx, keys, strings.TrimSpace(id), io.Discard); err != nil {
		t.Fatal(err)
	}
	billing := ca.client(t, "spiffe://papayd.test/billing")
	settings := map[string]string{"PAPAYD_TLS_CLIENT_CA_FILE": ca.file, "PAPAYD_AUTH": "mtls", "PAPAYD_DATA_DIR": dataDir}
	p, _ := startTLS(t, ca, settings, &billing)

	if _, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{}); err != nil {
		t.Errorf("gRPC with the certificate of a key: %v", err)
	}
	if _, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "MTLS-NONE"}); status.Code(err) != codes.NotFound {
		t.Errorf("gRPC GetCharge with the certificate: %v, want NotFound (authenticated)", err)
	}
	_, err := p.charges.CreateCharge(ctx, &papayv1.CreateChargeRequest{OutTradeNo: "MTLS-1"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC CreateCharge with a read-only key's certificate: %v, want PermissionDenied", err)
	}
	if code := p.do(http.MethodGet, "/v1/agreements", nil, nil); code != http.StatusOK {
		t.Errorf("REST with the certificate of a key: HTTP %d", code)
	}

	for _, uri := range []string{"spiffe://papayd.test/nobody", "spiffe://papayd.test/gone", "spiffe://papayd.test/Billing"} {
		cert := ca.client(t, uri)
		conf := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
		resp, err := c.Get(p.base + "/v1/agreements")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("REST with %s: HTTP %d, want 401", uri, resp.StatusCode)
		}
		conn, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = papayv1.NewAgreementServiceClient(conn).ListAgreements(ctx, &papayv1.ListAgreementsRequest{})
		conn.Close()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC with %s: %v, want Unauthenticated", uri, err)
		}
	}
}
