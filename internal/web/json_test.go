package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/storetest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSizedJSONPbWritesJSONPbsJSON: the gateway's marshaler writes what
// runtime.JSONPb with the same options writes, for messages of one type
// growing past the size it remembered, small ones, typed nils and values
// that are not messages.
func TestSizedJSONPbWritesJSONPbsJSON(t *testing.T) {
	plain := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true}}
	sized := &sizedJSONPb{JSONPb: *plain}
	at := time.Date(2026, 12, 1, 8, 30, 0, 123_000_000, time.UTC)
	small := storetest.FullCharge("T1", "X1", at)
	small.PromotionDetail, small.Description = nil, "short"
	big := storetest.FullCharge("T2", "X2", at)
	big.Description = strings.Repeat("長い説明 ", 200)
	values := []any{
		rpc.EventResponse(service.Event{ID: "evt_1", Sequence: 1, Type: service.EventChargeSucceeded, CreateTime: at, SubMchID: small.SubMchID, Charge: &small}),
		rpc.EventResponse(service.Event{ID: "evt_2", Sequence: 2, Type: service.EventChargeSucceeded, CreateTime: at, SubMchID: big.SubMchID, Charge: &big}),
		rpc.EventResponse(service.Event{ID: "evt_3", Sequence: 3, Type: service.EventChargeSucceeded, CreateTime: at, SubMchID: small.SubMchID, Charge: &small}),
		&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING},
		&healthpb.HealthCheckResponse{},
		(*papayv1.Charge)(nil),
		map[string]any{"not": "a message"},
		"text",
	}
	for i, v := range values {
		want, err := plain.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sized.Marshal(v)
		if err != nil {
			t.Fatalf("value %d (%T): %v", i, v, err)
		}
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("value %d (%T): %s is not JSON: %v", i, v, got, err)
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("value %d (%T): JSON differs from JSONPb's (-JSONPb +sized):\n%s", i, v, d)
		}
	}
	if n := sized.lastSize("papay.v1.GetEventResponse").Load(); n < 1000 {
		t.Errorf("remembered %d bytes for the last event, want its length", n)
	}
}
