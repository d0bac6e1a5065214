package web

import (
	"encoding/json"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/papayd/papayd/internal/storetest"
	"google.golang.org/protobuf/encoding/protojson"
)

// BenchmarkEncodeChargeEvent encodes a charge with every field set, as the
// event a webhook delivery carries (GET /v1/events/{id}; a REST read of
// the charge is the same message inside another): with runtime.JSONPb as
// grpc-gateway ships it, with the gateway's marshaler (MarshalJSON,
// sizedJSONPb: protojson too), and with encoding/json on the same
// generated message. encoding/json (and the encoders that follow its
// rules, goccy/go-json and json-iterator) is several times faster but does
// not write the API's JSON: int64 fields as numbers instead of strings,
// enums as numbers instead of names, Timestamps as {seconds, nanos}
// objects instead of RFC 3339; docs/PERFORMANCE-LIMITS.md has the
// measurements.
//
//	go test -run '^$' -bench EncodeChargeEvent ./internal/web/
func BenchmarkEncodeChargeEvent(b *testing.B) {
	m := chargeEvent(1, storetest.FullCharge("T1", "X1", eventTime))
	plain := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true}}
	for _, enc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"jsonpb", func() ([]byte, error) { return plain.Marshal(m) }},
		{"gateway", func() ([]byte, error) { return MarshalJSON(m) }},
		{"encoding-json-not-the-api", func() ([]byte, error) { return json.Marshal(m) }},
	} {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
