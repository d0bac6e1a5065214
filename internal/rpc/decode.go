package rpc

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"

	"github.com/papayd/papayd/internal/service"
)

// ErrMalformedRequest is a request whose bytes are not the method's
// protobuf message: the caller's error (InvalidArgument), where gRPC itself
// would answer Internal.
var ErrMalformedRequest = &service.Error{Kind: service.KindInvalid, Reason: "MALFORMED_REQUEST",
	Message: "the request is not a valid protobuf message of the method's request type"}

// frame is a request's bytes, not yet parsed: the server codec hands them
// over as they are, and decode parses them, so that a parse failure is an
// error papayd chooses rather than gRPC's Internal.
type frame struct{ data []byte }

// serverCodec is the proto codec, except that it passes a frame's bytes
// through unparsed.
type serverCodec struct{ encoding.CodecV2 }

func newServerCodec() serverCodec { return serverCodec{encoding.GetCodecV2(proto.Name)} }

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if f, ok := v.(*frame); ok {
		f.data = data.Materialize()
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// strictDecoding returns a copy of sd whose unary methods parse their
// request themselves: bytes that are not the request message become
// ErrMalformedRequest, reported through the interceptors (so it is logged,
// counted and mapped by the one table, like any other error). Errors of
// receiving itself (size limits, a cancelled stream) are gRPC's own
// statuses and pass unchanged.
func strictDecoding(sd *grpc.ServiceDesc) *grpc.ServiceDesc {
	out := *sd
	out.Methods = make([]grpc.MethodDesc, len(sd.Methods))
	for i, m := range sd.Methods {
		fullMethod := "/" + sd.ServiceName + "/" + m.MethodName
		handler := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			var f frame
			if err := dec(&f); err != nil {
				return nil, err
			}
			var malformed error
			resp, err := handler(srv, ctx, func(v any) error {
				msg, ok := v.(protov2.Message)
				if !ok {
					return fmt.Errorf("request type %T is not a protobuf message", v)
				}
				if err := protov2.Unmarshal(f.data, msg); err != nil {
					malformed = fmt.Errorf("%s: %w: %v", fullMethod, ErrMalformedRequest, err)
					return malformed
				}
				return nil
			}, ic)
			if malformed == nil {
				return resp, err
			}
			fail := func(context.Context, any) (any, error) { return nil, malformed }
			if ic == nil {
				return nil, Status(malformed).Err()
			}
			return ic(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, fail)
		}
		out.Methods[i] = m
	}
	return &out
}
