package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/papayd/papayd/internal/rpc"
)

// refusal is a request the HTTP port turns away before any service sees
// it. Its reason is the stable ErrorInfo reason REST callers get.
type refusal string

// The HTTP port's refusals.
const (
	refuseHost        refusal = "HOST_NOT_ALLOWED"
	refuseOrigin      refusal = "ORIGIN_NOT_ALLOWED"
	refuseMediaType   refusal = "UNSUPPORTED_MEDIA_TYPE"
	refuseTooLarge    refusal = "REQUEST_TOO_LARGE"
	refuseMethod      refusal = "METHOD_NOT_ALLOWED"
	refuseUnreadable  refusal = "INVALID_ARGUMENT"
	refuseUnavailable refusal = "UNAVAILABLE"
)

// refusals is the one table of the HTTP port's own errors: the HTTP
// status, the gRPC code the JSON body names (as the gateway's errors do),
// and the message.
var refusals = map[refusal]struct {
	status  int
	code    codes.Code
	message string
}{
	refuseHost:        {http.StatusForbidden, codes.PermissionDenied, "the Host header names a host papayd does not serve (see PAPAYD_ALLOWED_HOSTS)"},
	refuseOrigin:      {http.StatusForbidden, codes.PermissionDenied, "requests from this Origin are not allowed (see PAPAYD_CORS_ORIGINS)"},
	refuseMediaType:   {http.StatusUnsupportedMediaType, codes.InvalidArgument, "the request body must be application/json"},
	refuseTooLarge:    {http.StatusRequestEntityTooLarge, codes.InvalidArgument, "the request body is larger than 1 MiB"},
	refuseMethod:      {http.StatusMethodNotAllowed, codes.Unimplemented, "method not allowed on this path (see the Allow header)"},
	refuseUnreadable:  {http.StatusBadRequest, codes.InvalidArgument, "the request body could not be read"},
	refuseUnavailable: {http.StatusServiceUnavailable, codes.Unavailable, "not ready"},
}

// jsonMarshaler is the gateway's JSON: proto field names, as the API
// documents them. Refusals are written with it, so they have the shape of
// every other REST error (google.rpc.Status with an ErrorInfo).
var jsonMarshaler = &sizedJSONPb{JSONPb: runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
	UnmarshalOptions: protojson.UnmarshalOptions{},
}}

// refusalStatus is the google.rpc.Status of a refusal.
func refusalStatus(why refusal) *status.Status {
	st := status.New(refusals[why].code, refusals[why].message)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(why), Domain: rpc.ErrorDomain}); err == nil {
		st = d
	}
	return st
}

// refuse writes a refusal as the gateway writes its errors.
func refuse(w http.ResponseWriter, r *http.Request, why refusal) {
	buf, err := jsonMarshaler.Marshal(refusalStatus(why).Proto())
	if err != nil {
		buf = []byte(`{"code":13,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", jsonMarshaler.ContentType(nil))
	w.WriteHeader(refusals[why].status)
	_, _ = w.Write(buf)
}

// routingError is the gateway's routing error handler: a known path asked
// with another method answers 405 with Allow (grpc-gateway's default is
// 501 Unimplemented); the rest is the gateway's default.
func routingError(allowed func(*http.Request) []string) runtime.RoutingErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
		if isProbe(r.Context()) {
			return
		}
		if httpStatus == http.StatusMethodNotAllowed {
			if allow := allowed(r); len(allow) > 0 {
				w.Header().Set("Allow", strings.Join(allow, ", "))
			}
			refuse(w, r, refuseMethod)
			return
		}
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
	}
}
