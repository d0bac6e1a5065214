package rpc

import (
	"context"
	"log/slog"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// stubCharges answers GetCharge and panics in CloseCharge.
type stubCharges struct {
	papayv1.UnimplementedChargeServiceServer
}

func (stubCharges) GetCharge(_ context.Context, req *papayv1.GetChargeRequest) (*papayv1.GetChargeResponse, error) {
	return &papayv1.GetChargeResponse{Charge: &papayv1.Charge{OutTradeNo: req.GetOutTradeNo()}}, nil
}

func (stubCharges) CloseCharge(context.Context, *papayv1.CloseChargeRequest) (*papayv1.CloseChargeResponse, error) {
	panic("boom")
}

// TestLocalCallsRunTheInterceptors: an in-process call goes through the
// same chain as a gRPC one, outermost first, with the method's full name,
// and a panic becomes INTERNAL as it does on the server.
func TestLocalCallsRunTheInterceptors(t *testing.T) {
	t.Parallel()
	var seen []string
	record := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			seen = append(seen, name+" "+info.FullMethod+" "+status.Code(err).String())
			return resp, err
		}
	}
	ic := chain([]grpc.UnaryServerInterceptor{record("outer"), UnaryInterceptor(slog.New(slog.DiscardHandler)), record("inner")})
	charges := localCharges{srv: stubCharges{}, ic: ic}

	resp, err := charges.GetCharge(t.Context(), &papayv1.GetChargeRequest{OutTradeNo: "T1"})
	if err != nil || resp.GetCharge().GetOutTradeNo() != "T1" {
		t.Fatalf("GetCharge = %v, %v", resp, err)
	}
	if _, err := charges.CloseCharge(t.Context(), &papayv1.CloseChargeRequest{OutTradeNo: "T1"}); status.Code(err) != codes.Internal {
		t.Fatalf("CloseCharge after a panic: %v, want INTERNAL", err)
	}
	want := []string{
		"inner /papay.v1.ChargeService/GetCharge OK", "outer /papay.v1.ChargeService/GetCharge OK",
		"outer /papay.v1.ChargeService/CloseCharge Internal",
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("interceptors saw (-want +got):\n%s", diff)
	}

	hs := health.NewServer()
	h := localHealth{HealthServer: hs, ic: ic}
	got, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || got.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v", got, err)
	}
	if _, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check(nope) = %v, want NOT_FOUND", err)
	}
}

// TestLocalCoversEveryMethod: each RPC of these services goes through the
// interceptors in process; a method the wrapper lacks would fall through
// to the embedded Unimplemented server and never reach them.
func TestLocalCoversEveryMethod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  grpc.ServiceDesc
		local func(grpc.UnaryServerInterceptor) any
	}{
		{papayv1.AgreementService_ServiceDesc, func(ic grpc.UnaryServerInterceptor) any {
			return localAgreements{srv: papayv1.UnimplementedAgreementServiceServer{}, ic: ic}
		}},
		{papayv1.ChargeService_ServiceDesc, func(ic grpc.UnaryServerInterceptor) any {
			return localCharges{srv: papayv1.UnimplementedChargeServiceServer{}, ic: ic}
		}},
		{papayv1.RefundService_ServiceDesc, func(ic grpc.UnaryServerInterceptor) any {
			return localRefunds{srv: papayv1.UnimplementedRefundServiceServer{}, ic: ic}
		}},
	} {
		for _, m := range tc.desc.Methods {
			var seen string
			local := tc.local(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				seen = info.FullMethod
				return h(ctx, req)
			})
			method := reflect.ValueOf(local).MethodByName(m.MethodName)
			method.Call([]reflect.Value{reflect.ValueOf(t.Context()), reflect.New(method.Type().In(1).Elem())})
			if want := "/" + tc.desc.ServiceName + "/" + m.MethodName; seen != want {
				t.Errorf("%s: interceptors saw %q", want, seen)
			}
		}
	}
}
