package web

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// Gateway is the JSON facade: a grpc-gateway mux that calls papayd's own
// gRPC server over a client connection.
type Gateway struct {
	*runtime.ServeMux
	conn *grpc.ClientConn
}

// NewGateway dials the gRPC server at grpcAddr and registers every service.
// JSON uses the proto field names (snake_case), as the API documents them.
func NewGateway(ctx context.Context, grpcAddr string) (*Gateway, error) {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("gateway: dial %s: %w", grpcAddr, err)
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
	)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		papayv1.RegisterAgreementServiceHandler,
		papayv1.RegisterChargeServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("gateway: register: %w", err)
		}
	}
	return &Gateway{ServeMux: mux, conn: conn}, nil
}

// Close closes the gateway's connection to the gRPC server.
func (g *Gateway) Close() error { return g.conn.Close() }
