package web

import (
	"encoding/json"
	"fmt"
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
	small := storetest.FullCharge("T1", "X1", eventTime)
	small.PromotionDetail, small.Description = nil, "short"
	big := storetest.FullCharge("T2", "X2", eventTime)
	big.Description = strings.Repeat("長い説明 ", 200)
	values := []any{
		chargeEvent(1, small),
		chargeEvent(2, big),
		chargeEvent(3, small),
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

// eventTime is when the events of these tests happen.
var eventTime = time.Date(2026, 12, 1, 8, 30, 0, 123_000_000, time.UTC)

// chargeEvent is charge.succeeded event number seq, of c, as GET
// /v1/events/{id} answers it and a webhook delivery carries it.
func chargeEvent(seq uint64, c service.Charge) *papayv1.GetEventResponse {
	return rpc.EventResponse(service.Event{ID: fmt.Sprint("evt_", seq), Sequence: seq, Type: service.EventChargeSucceeded,
		CreateTime: eventTime, SubMchID: c.SubMchID, Charge: &c})
}
