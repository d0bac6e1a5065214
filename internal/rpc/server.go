package rpc

import (
	"crypto/tls"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// Limits bound what one caller may hold of the gRPC server.
type Limits struct {
	// MaxRecvMsgSize is the largest request, in bytes; a larger one is
	// refused with ResourceExhausted.
	MaxRecvMsgSize int
	// MaxConcurrentStreams is how many calls one connection may have open.
	MaxConcurrentStreams uint32
	// MaxConnectionIdle closes a connection without calls for this long.
	MaxConnectionIdle time.Duration
	// TLS, when not nil, is the server's TLS configuration (and so its
	// client certificate requirement); nil serves plaintext.
	TLS *tls.Config
}

// DefaultLimits are the limits papayd runs with unless configured.
var DefaultLimits = Limits{MaxRecvMsgSize: 1 << 20, MaxConcurrentStreams: 256, MaxConnectionIdle: 2 * time.Minute}

// Keepalive: the server pings a connection silent for keepaliveTime and
// closes it if the answer takes longer than keepaliveTimeout; a client that
// pings more often than keepaliveMinTime is sent away.
const (
	keepaliveTime    = time.Minute
	keepaliveTimeout = 20 * time.Second
	keepaliveMinTime = 10 * time.Second
)

// NewServer returns a gRPC server with papayd's services, grpc.health.v1
// (serving while the process runs; set NOT_SERVING through the returned
// health server on shutdown) and server reflection, and the same services
// for in-process callers (the gateway). The interceptors run in this
// order: the request id (outermost), outer (e.g. metrics, which so see the
// final status, refusals included), authentication (auth: the caller's
// key, its scope and rate), then papayd's own (logging, the error mapping,
// panic recovery). Requests that are not valid protobuf are the caller's
// error (InvalidArgument). redelivered, if not nil, is called after
// RedeliverEvent queued deliveries again (it wakes the webhook engine).
func NewServer(svc *service.Service, log *slog.Logger, limits Limits, auth Auth, redelivered func(), outer ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, Local) {
	return newServer(NewAgreementServer(svc), NewChargeServer(svc), NewRefundServer(svc), NewAuditServer(svc), NewEventServer(svc),
		NewWebhookServer(svc, redelivered), log, limits, auth, outer...)
}

func newServer(agreements papayv1.AgreementServiceServer, charges papayv1.ChargeServiceServer, refunds papayv1.RefundServiceServer,
	audits papayv1.AuditServiceServer, events papayv1.EventServiceServer, webhooks papayv1.WebhookServiceServer, log *slog.Logger,
	limits Limits, auth Auth, outer ...grpc.UnaryServerInterceptor) (*grpc.Server, *health.Server, Local) {
	az := newAuthorizer(auth, log)
	ics := slices.Concat([]grpc.UnaryServerInterceptor{RequestIDInterceptor()}, outer,
		[]grpc.UnaryServerInterceptor{az.unary, UnaryInterceptor(log)})
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ics...),
		grpc.ChainStreamInterceptor(az.stream),
		grpc.ForceServerCodecV2(newServerCodec()),
		grpc.MaxRecvMsgSize(limits.MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(limits.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: limits.MaxConnectionIdle, Time: keepaliveTime, Timeout: keepaliveTimeout,
		}),
		// A fixed pool of goroutines serves the streams: each keeps the stack
		// it grew (the SQLite driver runs deep), where a goroutine per call
		// grows a fresh stack every time.
		grpc.NumStreamWorkers(uint32(streamWorkers())),
	}
	if limits.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(limits.TLS)))
	}
	srv := grpc.NewServer(opts...)
	srv.RegisterService(strictDecoding(&papayv1.AgreementService_ServiceDesc), agreements)
	srv.RegisterService(strictDecoding(&papayv1.ChargeService_ServiceDesc), charges)
	srv.RegisterService(strictDecoding(&papayv1.RefundService_ServiceDesc), refunds)
	srv.RegisterService(strictDecoding(&papayv1.AuditService_ServiceDesc), audits)
	srv.RegisterService(strictDecoding(&papayv1.EventService_ServiceDesc), events)
	srv.RegisterService(strictDecoding(&papayv1.WebhookService_ServiceDesc), webhooks)
	hs := health.NewServer()
	srv.RegisterService(strictDecoding(&healthpb.Health_ServiceDesc), hs)
	for _, name := range []string{"", papayv1.AgreementService_ServiceDesc.ServiceName, papayv1.ChargeService_ServiceDesc.ServiceName,
		papayv1.RefundService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	reflection.Register(srv)
	ic := chain(ics)
	return srv, hs, Local{
		Agreements: localAgreements{srv: agreements, ic: ic},
		Charges:    localCharges{srv: charges, ic: ic},
		Refunds:    localRefunds{srv: refunds, ic: ic},
		Audit:      localAudit{srv: audits, ic: ic},
		Events:     localEvents{srv: events, ic: ic},
		Webhooks:   localWebhooks{srv: webhooks, ic: ic},
		Health:     localHealth{HealthServer: hs, ic: ic},
	}
}

// streamWorkers is the size of the stream worker pool: a few per core, so
// calls that wait (on the writer, on WeChat) do not hold up the others;
// beyond the pool gRPC starts goroutines as before.
func streamWorkers() int { return 4 * runtime.GOMAXPROCS(0) }
