package web

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/rpc"
)

// NewGateway returns the JSON facade: a grpc-gateway mux that calls
// papayd's services in process, through the gRPC server's interceptor
// chain (see rpc.Local), so a REST call costs one HTTP exchange, not an
// HTTP exchange and a gRPC one. It registers every service, and GET
// /v1/health: grpc.health.v1 Check for REST callers ({"status":"SERVING"};
// ?service= names one). JSON uses the proto field names (snake_case), as
// the API documents them. A known path asked with another method answers
// 405 with Allow and the error JSON (METHOD_NOT_ALLOWED). HTTP statuses
// derive from the gRPC codes (grpc-gateway's table: UNAUTHENTICATED 401,
// PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429, ...).
func NewGateway(ctx context.Context, local rpc.Local) (http.Handler, error) {
	agreements, charges, health := local.Agreements, local.Charges, local.Health
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler),
		// 405 with Allow for a known path asked with another method.
		runtime.WithMiddlewares(probeMiddleware, peerMiddleware),
		// Authorization reaches the interceptors as "authorization"
		// metadata (the gateway forwards it so); their refusals get
		// WWW-Authenticate and Retry-After.
		runtime.WithErrorHandler(httpError),
		runtime.WithRoutingErrorHandler(routingError(func(r *http.Request) []string { return allowedMethods(mux)(r) })),
		// X-HTTP-Method-Override would let a form post pick any method.
		runtime.WithDisableHTTPMethodOverride(),
	)
	if err := papayv1.RegisterAgreementServiceHandlerServer(ctx, mux, agreements); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	if err := papayv1.RegisterChargeServiceHandlerServer(ctx, mux, charges); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	if err := papayv1.RegisterRefundServiceHandlerServer(ctx, mux, local.Refunds); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	if err := papayv1.RegisterAuditServiceHandlerServer(ctx, mux, local.Audit); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	if err := papayv1.RegisterEventServiceHandlerServer(ctx, mux, local.Events); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	if err := papayv1.RegisterWebhookServiceHandlerServer(ctx, mux, local.Webhooks); err != nil {
		return nil, fmt.Errorf("gateway: register: %w", err)
	}
	err := mux.HandlePath(http.MethodGet, "/v1/health", func(w http.ResponseWriter, req *http.Request, _ map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, req)
		ctx, err := runtime.AnnotateIncomingContext(req.Context(), mux, req, healthpb.Health_Check_FullMethodName,
			runtime.WithHTTPPathPattern("/v1/health"))
		if err != nil {
			runtime.HTTPError(req.Context(), mux, out, w, req, err)
			return
		}
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: req.URL.Query().Get("service")})
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, req, err)
			return
		}
		runtime.ForwardResponseMessage(ctx, mux, out, w, req, resp)
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: register /v1/health: %w", err)
	}
	return mux, nil
}

// MarshalJSON returns m as the gateway writes it (proto field names): a
// webhook delivery's body is the JSON of GET /v1/events/{id}.
func MarshalJSON(m proto.Message) ([]byte, error) { return jsonMarshaler.Marshal(m) }

// peerMiddleware gives the call the HTTP client's address as its gRPC
// peer, as a gRPC call has its connection's: the interceptors see who
// called (and never a header the client chose, such as X-Forwarded-For).
func peerMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			r = r.WithContext(peer.NewContext(r.Context(), &peer.Peer{Addr: net.TCPAddrFromAddrPort(ap)}))
		}
		next(w, r, params)
	}
}

// httpError is the gateway's default error answer, plus the headers some
// codes call for: WWW-Authenticate: Bearer with 401 (grpc-gateway would
// put the message there), Retry-After with a 429 that carries a RetryInfo.
func httpError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unauthenticated:
		w = bearerChallenge{w}
	case codes.ResourceExhausted:
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				secs := int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
				w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// bearerChallenge sets WWW-Authenticate: Bearer (RFC 6750) as the status
// is written.
type bearerChallenge struct{ http.ResponseWriter }

func (c bearerChallenge) WriteHeader(code int) {
	c.Header().Set("WWW-Authenticate", "Bearer")
	c.ResponseWriter.WriteHeader(code)
}

func (c bearerChallenge) Unwrap() http.ResponseWriter { return c.ResponseWriter }
