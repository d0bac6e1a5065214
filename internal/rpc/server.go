package rpc

import (
	"log/slog"
	"runtime"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// NewServer returns a gRPC server with papayd's services, grpc.health.v1
// (serving while the process runs; set NOT_SERVING through the returned
// health server on shutdown) and server reflection, and the same services
// for in-process callers (the gateway). outer interceptors (e.g. metrics)
// run around papayd's own, so they see the final status.
func NewServer(svc *service.Service, log *slog.Logger, outer ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, Local) {
	ics := append(slices.Clip(outer), UnaryInterceptor(log))
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(ics...),
		// A fixed pool of goroutines serves the streams: each keeps the stack
		// it grew (the SQLite driver runs deep), where a goroutine per call
		// grows a fresh stack every time.
		grpc.NumStreamWorkers(uint32(streamWorkers())),
	)
	agreements, charges := NewAgreementServer(svc), NewChargeServer(svc)
	papayv1.RegisterAgreementServiceServer(srv, agreements)
	papayv1.RegisterChargeServiceServer(srv, charges)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	for _, name := range []string{"", papayv1.AgreementService_ServiceDesc.ServiceName, papayv1.ChargeService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(srv)
	ic := chain(ics)
	return srv, hs, Local{
		Agreements: localAgreements{srv: agreements, ic: ic},
		Charges:    localCharges{srv: charges, ic: ic},
		Health:     localHealth{HealthServer: hs, ic: ic},
	}
}

// streamWorkers is the size of the stream worker pool: a few per core, so
// calls that wait (on the writer, on WeChat) do not hold up the others;
// beyond the pool gRPC starts goroutines as before.
func streamWorkers() int { return 4 * runtime.GOMAXPROCS(0) }
