package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/papayd/papayd/internal/service"
)

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		code   codes.Code
		reason string
		msg    string
	}{
		{fmt.Errorf("get: %w", service.ErrAgreementNotFound), codes.NotFound, "AGREEMENT_NOT_FOUND", "agreement not found"},
		{service.ErrOutContractCodeReused, codes.AlreadyExists, "OUT_CONTRACT_CODE_REUSED", ""},
		{service.ErrAgreementNotSigned, codes.FailedPrecondition, "AGREEMENT_NOT_SIGNED", ""},
		{service.ErrWeChatUnavailable, codes.Unavailable, "WECHATPAY_UNAVAILABLE", ""},
		{service.ErrNotificationUnauthentic, codes.Unauthenticated, "NOTIFICATION_UNAUTHENTIC", ""},
		{&service.Error{Kind: service.KindPermissionDenied, Reason: "NO_AUTH", Message: "no"}, codes.PermissionDenied, "NO_AUTH", "no"},
		{errors.New("database is locked at /var/secret/path"), codes.Internal, "INTERNAL", "internal error"},
		{&service.Error{Kind: service.KindInternal, Reason: "WECHATPAY_AUTH_FAILED", Message: "details"}, codes.Internal, "WECHATPAY_AUTH_FAILED", "internal error"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "", ""},
		{fmt.Errorf("query: %w", context.Canceled), codes.Canceled, "", ""},
		// WeChat Pay's call timed out: the domain's answer, not the caller's deadline.
		{fmt.Errorf("terminate: %w: %w", service.ErrWeChatUnavailable, context.DeadlineExceeded), codes.Unavailable, "WECHATPAY_UNAVAILABLE", ""},
	} {
		st := Status(tc.err)
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
		}
		var reason string
		for _, d := range st.Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				reason = ei.GetReason()
				if ei.GetDomain() != ErrorDomain {
					t.Errorf("%v: domain %q", tc.err, ei.GetDomain())
				}
			}
		}
		if reason != tc.reason {
			t.Errorf("%v: reason %q, want %q", tc.err, reason, tc.reason)
		}
		if tc.msg != "" && st.Message() != tc.msg {
			t.Errorf("%v: message %q, want %q", tc.err, st.Message(), tc.msg)
		}
	}
}

func TestStatusNamesEveryInvalidField(t *testing.T) {
	t.Parallel()
	err := &service.Error{Kind: service.KindInvalid, Reason: "INVALID_ARGUMENT", Message: "invalid",
		Violations: []service.FieldViolation{{Field: "plan_id", Description: "is required"}, {Field: "openid", Description: "too long"}}}
	var got []string
	for _, d := range Status(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				got = append(got, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	if diff := cmp.Diff([]string{"plan_id: is required", "openid: too long"}, got); diff != "" {
		t.Fatalf("violations (-want +got):\n%s", diff)
	}
}

func TestInterceptorRecoversAndMaps(t *testing.T) {
	t.Parallel()
	ic := UnaryInterceptor(slog.New(slog.DiscardHandler))
	info := &grpc.UnaryServerInfo{FullMethod: "/papay.v1.AgreementService/GetAgreement"}
	_, err := ic(context.Background(), nil, info, func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic: %v", err)
	}
	_, err = ic(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, service.ErrAgreementNotFound })
	if status.Code(err) != codes.NotFound {
		t.Fatalf("domain error: %v", err)
	}
	resp, err := ic(context.Background(), nil, info, func(context.Context, any) (any, error) { return "ok", nil })
	if err != nil || resp != "ok" {
		t.Fatalf("success: %v %v", resp, err)
	}
}
