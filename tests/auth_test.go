package tests

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/app"
)

// TestAuthSetting: PAPAYD_AUTH defaults to keys in live mode and none in
// sandbox mode; live mode without keys is refused, naming the setting,
// unless the gRPC and HTTP listeners are both on loopback.
func TestAuthSetting(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		want    string // "" : refused
		refused string // in the error
	}{
		{"sandbox default", map[string]string{}, app.AuthNone, ""},
		{"live default", map[string]string{"PAPAYD_MODE": "live"}, app.AuthKeys, ""},
		{"sandbox keys", map[string]string{"PAPAYD_AUTH": "keys"}, app.AuthKeys, ""},
		{"live none on loopback", map[string]string{"PAPAYD_MODE": "live", "PAPAYD_AUTH": "none",
			"PAPAYD_GRPC_ADDR": "127.0.0.1:9090", "PAPAYD_HTTP_ADDR": "[::1]:8080"}, app.AuthNone, ""},
		{"live none on localhost", map[string]string{"PAPAYD_MODE": "live", "PAPAYD_AUTH": "none",
			"PAPAYD_GRPC_ADDR": "localhost:9090", "PAPAYD_HTTP_ADDR": "127.0.0.2:8080"}, app.AuthNone, ""},
		{"live none, gRPC on every interface", map[string]string{"PAPAYD_MODE": "live", "PAPAYD_AUTH": "none",
			"PAPAYD_GRPC_ADDR": ":9090"}, "", "PAPAYD_AUTH"},
		{"live none, HTTP on a public address", map[string]string{"PAPAYD_MODE": "live", "PAPAYD_AUTH": "none",
			"PAPAYD_HTTP_ADDR": "10.0.0.5:8080"}, "", "PAPAYD_HTTP_ADDR"},
		{"sandbox none on every interface", map[string]string{"PAPAYD_AUTH": "none", "PAPAYD_GRPC_ADDR": "0.0.0.0:9090"}, app.AuthNone, ""},
		{"unknown value", map[string]string{"PAPAYD_AUTH": "token"}, "", "PAPAYD_AUTH"},
	}
	for _, c := range cases {
		cfg, err := app.ParseConfig(nil, func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }, io.Discard)
		switch {
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: err %v, want a refusal naming %s", c.name, err, c.refused)
		case c.want != "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && cfg.Auth != c.want:
			t.Errorf("%s: PAPAYD_AUTH %q, want %q", c.name, cfg.Auth, c.want)
		}
	}
}

// TestAuthKeysRefusesCallsWithoutKey: with PAPAYD_AUTH=keys, a call without
// a valid key is refused over gRPC (UNAUTHENTICATED) and REST (401 with
// WWW-Authenticate: Bearer), counted by reason and logged with the request
// id; health checks need no key.
func TestAuthKeysRefusesCallsWithoutKey(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{"PAPAYD_AUTH": "keys"})
	_, err := p.charges.GetCharge(context.Background(), &papayv1.GetChargeRequest{OutTradeNo: "NOKEY-1"})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without a key: %v, want Unauthenticated", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer not-a-key")
	_, err = p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC with an unknown key: %v, want Unauthenticated", err)
	}
	req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/charges/NOKEY-1", nil)
	req.Header.Set("X-Request-Id", "auth-e2e-1")
	req.Header.Set("Authorization", "Basic bm90LWEta2V5")
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("REST with a Basic authorization: %d WWW-Authenticate %q, want 401 Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, err := healthpb.NewHealthClient(p.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("gRPC health without a key: %v", err)
	}
	if got := p.do(http.MethodGet, "/v1/health", nil, nil); got != http.StatusOK {
		t.Errorf("REST /v1/health without a key: %d", got)
	}
	m := p.scrape()
	for _, want := range []string{`papayd_auth_failures_total{reason="missing"} 1`, `papayd_auth_failures_total{reason="malformed"} 1`,
		`papayd_auth_failures_total{reason="rejected"} 1`,
		`papayd_rpc_requests_total{code="Unauthenticated",method="/papay.v1.ChargeService/GetCharge"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if log := p.log.String(); !strings.Contains(log, "request_id=auth-e2e-1") || strings.Contains(log, "not-a-key") || strings.Contains(log, "bm90LWEta2V5") {
		t.Errorf("the refusal is not logged with its request id, or the token is logged:\n%s", log)
	}
}
