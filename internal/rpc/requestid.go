package rpc

import (
	"context"
	"crypto/rand"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// RequestIDHeader is the HTTP header and the gRPC metadata key of a
// request's id: taken from the caller when valid, echoed in the answer.
const RequestIDHeader = "x-request-id"

// maxRequestIDBytes bounds a caller's request id.
const maxRequestIDBytes = 64

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id ctx carries, "" when none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestID returns the caller's id if it is valid (1 to 64 bytes of
// printable ASCII), else a new random one.
func RequestID(fromCaller string) string {
	if validRequestID(fromCaller) {
		return fromCaller
	}
	return rand.Text()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// RequestIDInterceptor gives each RPC a request id in its context: the one
// the context already carries (a REST call, set by the HTTP middleware,
// which echoes it), else the caller's x-request-id metadata when valid,
// else a new one; the last two are echoed in the response header metadata.
// It runs outermost, so every interceptor and the handler log with it.
func RequestIDInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if RequestIDFrom(ctx) != "" {
			return handler(ctx, req)
		}
		var fromCaller string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(RequestIDHeader); len(v) > 0 {
				fromCaller = v[0]
			}
		}
		id := RequestID(fromCaller)
		ctx = WithRequestID(ctx, id)
		// Fails only without a server stream (an in-process call): nothing
		// to echo to then.
		_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
		return handler(ctx, req)
	}
}

// LogHandler wraps h so that every record logged with a context carrying
// a request id gets a request_id attribute.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
