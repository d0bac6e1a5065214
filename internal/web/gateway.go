package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// NewGateway returns the JSON facade: a grpc-gateway mux that calls
// papayd's services in process, through the gRPC server's interceptor
// chain (see rpc.Local), so a REST call costs one HTTP exchange, not an
// HTTP exchange and a gRPC one. It registers every service, and GET
// /v1/health: grpc.health.v1 Check for REST callers ({"status":"SERVING"};
// ?service= names one). JSON uses the proto field names (snake_case), as
// the API documents them. A known path asked with another method answers
// 405 with Allow and the error JSON (METHOD_NOT_ALLOWED).
func NewGateway(ctx context.Context, agreements papayv1.AgreementServiceServer, charges papayv1.ChargeServiceServer,
	health healthpb.HealthServer) (http.Handler, error) {
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler),
		// 405 with Allow for a known path asked with another method.
		runtime.WithMiddlewares(probeMiddleware),
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
