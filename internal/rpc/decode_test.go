package rpc

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// rawCodec puts a []byte on the wire as it is and reads the answer's bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestMalformedRequestIsInvalidArgument: bytes that are not the request
// message answer InvalidArgument with reason MALFORMED_REQUEST, through
// the interceptors; a well-formed request is decoded as before.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	t.Parallel()
	var seen []string
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		seen = append(seen, info.FullMethod+" "+status.Code(err).String())
		return resp, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(newServerCodec()),
		grpc.ChainUnaryInterceptor(record, UnaryInterceptor(slog.New(slog.DiscardHandler))))
	srv.RegisterService(strictDecoding(&papayv1.ChargeService_ServiceDesc), stubCharges{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	in, out := []byte{0xff, 0xff, 0xff}, []byte(nil)
	err = conn.Invoke(t.Context(), papayv1.ChargeService_GetCharge_FullMethodName, &in, &out, grpc.ForceCodecV2(rawCodec{}))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("malformed request: %v, want InvalidArgument", err)
	}
	var reason string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	if reason != "MALFORMED_REQUEST" {
		t.Errorf("reason %q, want MALFORMED_REQUEST", reason)
	}

	resp, err := papayv1.NewChargeServiceClient(conn).GetCharge(t.Context(), &papayv1.GetChargeRequest{OutTradeNo: "T1"})
	if err != nil || resp.GetCharge().GetOutTradeNo() != "T1" {
		t.Fatalf("GetCharge = %v, %v", resp, err)
	}
	want := []string{"/papay.v1.ChargeService/GetCharge InvalidArgument", "/papay.v1.ChargeService/GetCharge OK"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("interceptor saw (-want +got):\n%s", diff)
	}
}
