package rpc

import (
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// NewServer returns a gRPC server with papayd's services, grpc.health.v1
// (serving while the process runs; set NOT_SERVING through the returned
// health server on shutdown) and server reflection. outer interceptors
// (e.g. metrics) run around papayd's own, so they see the final status.
func NewServer(svc *service.Service, log *slog.Logger, outer ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server) {
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(append(outer, UnaryInterceptor(log))...))
	papayv1.RegisterAgreementServiceServer(srv, NewAgreementServer(svc))
	papayv1.RegisterChargeServiceServer(srv, NewChargeServer(svc))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	for _, name := range []string{"", papayv1.AgreementService_ServiceDesc.ServiceName, papayv1.ChargeService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(srv)
	return srv, hs
}
