package rpc

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/papayd/papayd/internal/service"
)

// ErrorDomain is the ErrorInfo domain of papayd's errors.
const ErrorDomain = "papayd"

// codeOf is the one mapping from domain error kinds to gRPC codes.
func codeOf(k service.Kind) codes.Code {
	switch k {
	case service.KindInvalid:
		return codes.InvalidArgument
	case service.KindNotFound:
		return codes.NotFound
	case service.KindConflict:
		return codes.AlreadyExists
	case service.KindFailedPrecondition:
		return codes.FailedPrecondition
	case service.KindUnavailable:
		return codes.Unavailable
	case service.KindUnauthenticated:
		return codes.Unauthenticated
	case service.KindPermissionDenied:
		return codes.PermissionDenied
	case service.KindResourceExhausted:
		return codes.ResourceExhausted
	case service.KindOutOfRange:
		return codes.OutOfRange
	}
	return codes.Internal
}

// Status converts a domain error into a gRPC status with an ErrorInfo
// carrying the stable reason and, for invalid input, a BadRequest naming
// every invalid field. Internal errors reach the caller without their text.
func Status(err error) *status.Status {
	if s, ok := status.FromError(err); ok {
		return s
	}
	// A domain error says what happened, whatever caused it: WeChat Pay
	// unavailable because its call timed out is WECHATPAY_UNAVAILABLE, not
	// the caller's deadline.
	var domain *service.Error
	if !errors.As(err, &domain) {
		if errors.Is(err, context.DeadlineExceeded) {
			return status.New(codes.DeadlineExceeded, "deadline exceeded")
		}
		if errors.Is(err, context.Canceled) {
			return status.New(codes.Canceled, "canceled")
		}
	}
	e := service.AsError(err)
	code := codeOf(e.Kind)
	msg := e.Message
	if code == codes.Internal {
		msg = "internal error"
	}
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: e.Reason, Domain: ErrorDomain}}
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		details = append(details, br)
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st
}

// UnaryInterceptor recovers panics, maps domain errors to statuses (once,
// for every RPC) and logs each call. Internal errors are logged with their
// cause; callers see only "internal error".
func UnaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "rpc panic", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		resp, err = handler(ctx, req)
		if err == nil {
			log.DebugContext(ctx, "rpc", "method", info.FullMethod, "code", codes.OK.String(), "duration", time.Since(start))
			return resp, nil
		}
		st := Status(err)
		level := slog.LevelInfo
		if st.Code() == codes.Internal || st.Code() == codes.Unavailable {
			level = slog.LevelError
		}
		log.Log(ctx, level, "rpc", "method", info.FullMethod, "code", st.Code().String(),
			"duration", time.Since(start), "error", err.Error())
		return nil, st.Err()
	}
}
