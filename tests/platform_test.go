package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

func TestHealthReflectionOpenAPI(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()

	hc, err := healthpb.NewHealthClient(p.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "papay.v1.AgreementService"})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc health: %v %v", hc.GetStatus(), err)
	}
	var h map[string]string
	if code := p.do(http.MethodGet, "/healthz", nil, &h); code != http.StatusOK || h["status"] != "SERVING" {
		t.Fatalf("/healthz: HTTP %d %v", code, h)
	}

	stream, err := reflectionpb.NewServerReflectionClient(p.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"papay.v1.AgreementService", "papay.v1.ChargeService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	_ = stream.CloseSend()

	var doc struct {
		Swagger string                     `json:"swagger"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if code := p.do(http.MethodGet, "/openapi.json", nil, &doc); code != http.StatusOK {
		t.Fatalf("/openapi.json: HTTP %d", code)
	}
	for _, path := range []string{"/v1/agreements:presign", "/v1/agreements/{contract_id}", "/v1/agreements/out-contract-code/{out_contract_code}",
		"/v1/agreements/{contract_id}:terminate", "/v1/charges", "/v1/charges/{out_trade_no}:close"} {
		if _, ok := doc.Paths[path]; !ok {
			t.Errorf("OpenAPI document lacks %s", path)
		}
	}
}

// TestRestartKeepsEverything stops papayd and starts it again on the same
// data directory: the agreement and the processed notifications survive,
// and a duplicate of an old notification is still recognised.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir)
	a := signed(t, p, "oRestart")
	before := p.notifications()
	p.stop()

	q := start(t, dir)
	got := getByCode(t, q, a.GetOutContractCode())
	if got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED || got.GetContractId() != a.GetContractId() {
		t.Fatalf("after restart: %v", got)
	}
	if after := q.notifications(); len(after) != len(before) || len(after) == 0 {
		t.Fatalf("notifications before %d, after %d", len(before), len(after))
	}
}
