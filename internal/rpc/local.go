package rpc

import (
	"context"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// Local are papayd's services called in process, each call through the same
// interceptor chain as on the gRPC server (metrics, logging, the error
// mapping, panic recovery). The JSON gateway serves them directly, without
// a second trip through a gRPC client and server for every REST call.
type Local struct {
	Agreements papayv1.AgreementServiceServer
	Charges    papayv1.ChargeServiceServer
	Refunds    papayv1.RefundServiceServer
	Audit      papayv1.AuditServiceServer
	Events     papayv1.EventServiceServer
	Webhooks   papayv1.WebhookServiceServer
	Health     healthpb.HealthServer
}

// chain composes interceptors into one, the first outermost, as
// grpc.ChainUnaryInterceptor does on the server.
func chain(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, inner := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, inner) }
		}
		return next(ctx, req)
	}
}

// invoke calls h with req through ic, as the gRPC server would call
// method on srv.
func invoke[Req, Resp any](ctx context.Context, ic grpc.UnaryServerInterceptor, srv any, method string,
	req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	resp, err := ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method},
		func(ctx context.Context, req any) (any, error) { return h(ctx, req.(Req)) })
	if err != nil {
		var zero Resp
		return zero, err
	}
	return resp.(Resp), nil
}

type localAgreements struct {
	papayv1.UnimplementedAgreementServiceServer
	srv papayv1.AgreementServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localAgreements) CreatePresignSession(ctx context.Context, req *papayv1.CreatePresignSessionRequest) (*papayv1.CreatePresignSessionResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.AgreementService_CreatePresignSession_FullMethodName, req, l.srv.CreatePresignSession)
}

func (l localAgreements) GetAgreement(ctx context.Context, req *papayv1.GetAgreementRequest) (*papayv1.GetAgreementResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.AgreementService_GetAgreement_FullMethodName, req, l.srv.GetAgreement)
}

func (l localAgreements) ListAgreements(ctx context.Context, req *papayv1.ListAgreementsRequest) (*papayv1.ListAgreementsResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.AgreementService_ListAgreements_FullMethodName, req, l.srv.ListAgreements)
}

func (l localAgreements) TerminateAgreement(ctx context.Context, req *papayv1.TerminateAgreementRequest) (*papayv1.TerminateAgreementResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.AgreementService_TerminateAgreement_FullMethodName, req, l.srv.TerminateAgreement)
}

type localCharges struct {
	papayv1.UnimplementedChargeServiceServer
	srv papayv1.ChargeServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localCharges) CreateCharge(ctx context.Context, req *papayv1.CreateChargeRequest) (*papayv1.CreateChargeResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.ChargeService_CreateCharge_FullMethodName, req, l.srv.CreateCharge)
}

func (l localCharges) GetCharge(ctx context.Context, req *papayv1.GetChargeRequest) (*papayv1.GetChargeResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.ChargeService_GetCharge_FullMethodName, req, l.srv.GetCharge)
}

func (l localCharges) ListCharges(ctx context.Context, req *papayv1.ListChargesRequest) (*papayv1.ListChargesResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.ChargeService_ListCharges_FullMethodName, req, l.srv.ListCharges)
}

func (l localCharges) CloseCharge(ctx context.Context, req *papayv1.CloseChargeRequest) (*papayv1.CloseChargeResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.ChargeService_CloseCharge_FullMethodName, req, l.srv.CloseCharge)
}

// localHealth is grpc.health.v1's Check in process (Watch and List stay
// gRPC only).
type localHealth struct {
	healthpb.HealthServer
	ic grpc.UnaryServerInterceptor
}

func (l localHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return invoke(ctx, l.ic, l.HealthServer, healthpb.Health_Check_FullMethodName, req, l.HealthServer.Check)
}
