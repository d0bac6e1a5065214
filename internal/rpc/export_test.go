package rpc

import (
	"log/slog"

	"google.golang.org/grpc"
)

// Exported for the tests of package rpc_test (which import the gateway).
var (
	NewServerWith = newServer
	IsPublic      = isPublic
)

// AuthUnary is the authentication interceptor of a.
func AuthUnary(a Auth, log *slog.Logger) grpc.UnaryServerInterceptor {
	return newAuthorizer(a, log).unary
}
