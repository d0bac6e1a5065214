package rpc

import (
	"context"
	"math"

	"google.golang.org/grpc"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// RefundServer implements papay.v1.RefundService over the domain.
type RefundServer struct {
	papayv1.UnimplementedRefundServiceServer
	svc *service.Service
}

var _ papayv1.RefundServiceServer = (*RefundServer)(nil)

// NewRefundServer returns the RefundService handlers.
func NewRefundServer(svc *service.Service) *RefundServer {
	return &RefundServer{svc: svc}
}

// CreateRefund refunds part or all of a charge.
func (s *RefundServer) CreateRefund(ctx context.Context, req *papayv1.CreateRefundRequest) (*papayv1.CreateRefundResponse, error) {
	r, err := s.svc.CreateRefund(ctx, service.RefundInput{
		OutRefundNo: req.GetOutRefundNo(), OutTradeNo: req.GetOutTradeNo(), TransactionID: req.GetTransactionId(),
		Amount: service.Money{Total: req.GetAmount().GetRefund(), Currency: req.GetAmount().GetCurrency()},
		Reason: req.GetReason(),
	})
	if err != nil {
		return nil, err
	}
	return &papayv1.CreateRefundResponse{Refund: refundToProto(r)}, nil
}

// GetRefund reads one refund.
func (s *RefundServer) GetRefund(ctx context.Context, req *papayv1.GetRefundRequest) (*papayv1.GetRefundResponse, error) {
	r, st, err := s.svc.LookupRefund(ctx, service.RefundKey{OutRefundNo: req.GetOutRefundNo(), RefundID: req.GetRefundId()}, req.GetRefresh())
	if err != nil {
		return nil, err
	}
	return &papayv1.GetRefundResponse{Refund: refundToProto(r), RefreshStatus: refreshToProto(st)}, nil
}

// ListRefunds pages through refunds.
func (s *RefundServer) ListRefunds(ctx context.Context, req *papayv1.ListRefundsRequest) (*papayv1.ListRefundsResponse, error) {
	state, err := refundStateFromProto(req.GetState())
	if err != nil {
		return nil, err
	}
	rs, next, err := s.svc.ListRefunds(ctx, service.RefundFilter{
		OutTradeNo: req.GetOutTradeNo(), State: state, SubMchID: req.GetSubMchid(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListRefundsResponse{NextPageToken: next, Refunds: make([]*papayv1.Refund, 0, len(rs))}
	for _, r := range rs {
		resp.Refunds = append(resp.Refunds, refundToProto(r))
	}
	return resp, nil
}

func refundToProto(r service.Refund) *papayv1.Refund {
	p := &papayv1.Refund{
		RefundId:       r.RefundID,
		OutRefundNo:    r.OutRefundNo,
		OutTradeNo:     r.OutTradeNo,
		TransactionId:  r.TransactionID,
		SubMchid:       r.SubMchID,
		SpAppid:        r.SPAppID,
		SubAppid:       r.SubAppID,
		Reason:         r.Reason,
		Amount:         &papayv1.RefundAmount{Refund: r.Amount.Total, Currency: r.Amount.Currency},
		ChargeTotal:    r.ChargeTotal,
		PayerRefund:    r.PayerRefund,
		PayerCurrency:  r.PayerCurrency,
		Status:         r.Status,
		Channel:        r.Channel,
		RecvAccount:    r.RecvAccount,
		FundSource:     r.FundSource,
		State:          refundStateToProto[r.State],
		FailureCode:    r.FailureCode,
		FailureMessage: r.FailureMessage,
		LastError:      r.LastError,
		Attempts:       int32(min(r.Attempts, math.MaxInt32)),
		LastSendTime:   timeToProto(r.LastSendTime),
		NextCheckTime:  timeToProto(r.NextCheckTime),
		SuccessTime:    timeToProto(r.SuccessTime),
		CreateTime:     timeToProto(r.CreateTime),
		UpdateTime:     timeToProto(r.UpdateTime),
	}
	p.ExchangeRate = exchangeRateToProto(r.ExchangeRate)
	return p
}

var refundStateToProto = map[service.RefundState]papayv1.RefundState{
	service.RefundPending:    papayv1.RefundState_REFUND_STATE_PENDING,
	service.RefundProcessing: papayv1.RefundState_REFUND_STATE_PROCESSING,
	service.RefundSucceeded:  papayv1.RefundState_REFUND_STATE_SUCCEEDED,
	service.RefundClosed:     papayv1.RefundState_REFUND_STATE_CLOSED,
	service.RefundAbnormal:   papayv1.RefundState_REFUND_STATE_ABNORMAL,
	service.RefundFailed:     papayv1.RefundState_REFUND_STATE_FAILED,
}

func refundStateFromProto(s papayv1.RefundState) (service.RefundState, error) {
	if s == papayv1.RefundState_REFUND_STATE_UNSPECIFIED {
		return "", nil
	}
	if st, ok := fromProto(refundStateToProto, s); ok {
		return st, nil
	}
	return "", fieldError("state", "unknown refund state")
}

type localRefunds struct {
	papayv1.UnimplementedRefundServiceServer
	srv papayv1.RefundServiceServer
	ic  grpc.UnaryServerInterceptor
}

func (l localRefunds) CreateRefund(ctx context.Context, req *papayv1.CreateRefundRequest) (*papayv1.CreateRefundResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.RefundService_CreateRefund_FullMethodName, req, l.srv.CreateRefund)
}

func (l localRefunds) GetRefund(ctx context.Context, req *papayv1.GetRefundRequest) (*papayv1.GetRefundResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.RefundService_GetRefund_FullMethodName, req, l.srv.GetRefund)
}

func (l localRefunds) ListRefunds(ctx context.Context, req *papayv1.ListRefundsRequest) (*papayv1.ListRefundsResponse, error) {
	return invoke(ctx, l.ic, l.srv, papayv1.RefundService_ListRefunds_FullMethodName, req, l.srv.ListRefunds)
}
