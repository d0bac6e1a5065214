package rpc

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// AgreementServer implements papay.v1.AgreementService over the domain.
type AgreementServer struct {
	papayv1.UnimplementedAgreementServiceServer
	svc *service.Service
}

var _ papayv1.AgreementServiceServer = (*AgreementServer)(nil)

// NewAgreementServer returns the AgreementService handlers.
func NewAgreementServer(svc *service.Service) *AgreementServer {
	return &AgreementServer{svc: svc}
}

// CreatePresignSession starts a signing session.
func (s *AgreementServer) CreatePresignSession(ctx context.Context, req *papayv1.CreatePresignSessionRequest) (*papayv1.CreatePresignSessionResponse, error) {
	ch, err := channelFromProto(req.GetChannel())
	if err != nil {
		return nil, err
	}
	in := service.PresignInput{
		Channel: ch, PlanID: req.GetPlanId(), OutContractCode: req.GetOutContractCode(),
		OpenID: req.GetOpenid(), UserDisplayName: req.GetUserDisplayName(),
		Merchant:     service.Merchant{SubMchID: req.GetSubMchid(), SPAppID: req.GetSpAppid(), SubAppID: req.GetSubAppid()},
		UserClientIP: req.GetUserClientIp(), ReturnURL: req.GetReturnUrl(), ReturnAppID: req.GetReturnAppid(),
	}
	if req.SessionExpireTime != nil {
		if err := req.GetSessionExpireTime().CheckValid(); err != nil {
			return nil, fieldError("session_expire_time", "is not a valid timestamp")
		}
		in.SessionExpireTime = req.GetSessionExpireTime().AsTime()
	}
	out, err := s.svc.CreatePresignSession(ctx, in)
	if err != nil {
		return nil, err
	}
	return &papayv1.CreatePresignSessionResponse{
		Agreement: agreementToProto(out.Agreement),
		SessionId: out.Session.SessionID, SignUrl: out.Session.SignURL, ShowCodeUrl: out.Session.ShowCodeURL,
	}, nil
}

// GetAgreement reads one agreement.
func (s *AgreementServer) GetAgreement(ctx context.Context, req *papayv1.GetAgreementRequest) (*papayv1.GetAgreementResponse, error) {
	k := service.AgreementKey{ContractID: req.GetContractId(), OutContractCode: req.GetOutContractCode(), PlanID: req.GetPlanId()}
	a, st, err := s.svc.LookupAgreement(ctx, k, req.GetRefresh())
	if err != nil {
		return nil, err
	}
	return &papayv1.GetAgreementResponse{Agreement: agreementToProto(a), RefreshStatus: refreshToProto(st)}, nil
}

// ListAgreements pages through agreements.
func (s *AgreementServer) ListAgreements(ctx context.Context, req *papayv1.ListAgreementsRequest) (*papayv1.ListAgreementsResponse, error) {
	state, err := agreementStateFromProto(req.GetState())
	if err != nil {
		return nil, err
	}
	as, next, err := s.svc.ListAgreements(ctx, service.AgreementFilter{
		OpenID: req.GetOpenid(), PlanID: req.GetPlanId(), State: state, SubMchID: req.GetSubMchid(),
		PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListAgreementsResponse{NextPageToken: next, Agreements: make([]*papayv1.Agreement, 0, len(as))}
	for _, a := range as {
		resp.Agreements = append(resp.Agreements, agreementToProto(a))
	}
	return resp, nil
}

// TerminateAgreement ends a signed agreement.
func (s *AgreementServer) TerminateAgreement(ctx context.Context, req *papayv1.TerminateAgreementRequest) (*papayv1.TerminateAgreementResponse, error) {
	a, err := s.svc.TerminateAgreement(ctx, req.GetContractId(), req.GetTerminationNote())
	if err != nil {
		return nil, err
	}
	return &papayv1.TerminateAgreementResponse{Agreement: agreementToProto(a)}, nil
}

func agreementToProto(a service.Agreement) *papayv1.Agreement {
	return &papayv1.Agreement{
		OutContractCode:   a.OutContractCode,
		ContractId:        a.ContractID,
		PlanId:            a.PlanID,
		SubMchid:          a.SubMchID,
		SpAppid:           a.SPAppID,
		SubAppid:          a.SubAppID,
		Openid:            a.OpenID,
		UserDisplayName:   a.UserDisplayName,
		Channel:           channelToProto[a.Channel],
		State:             agreementStateToProto[a.State],
		TerminationMode:   terminationModeToProto(a.TerminationMode),
		TerminationNote:   a.TerminationNote,
		SignedTime:        timeToProto(a.SignedTime),
		TerminatedTime:    timeToProto(a.TerminatedTime),
		SessionExpireTime: timeToProto(a.SessionExpireTime),
		CreateTime:        timeToProto(a.CreateTime),
		UpdateTime:        timeToProto(a.UpdateTime),
	}
}

var channelToProto = map[service.Channel]papayv1.SigningChannel{
	service.ChannelMiniProgram: papayv1.SigningChannel_SIGNING_CHANNEL_MINI_PROGRAM,
	service.ChannelApp:         papayv1.SigningChannel_SIGNING_CHANNEL_APP,
	service.ChannelH5:          papayv1.SigningChannel_SIGNING_CHANNEL_H5,
	service.ChannelJSAPI:       papayv1.SigningChannel_SIGNING_CHANNEL_JSAPI,
	service.ChannelWeb:         papayv1.SigningChannel_SIGNING_CHANNEL_WEB,
}

func channelFromProto(c papayv1.SigningChannel) (service.Channel, error) {
	if c == papayv1.SigningChannel_SIGNING_CHANNEL_UNSPECIFIED {
		return service.ChannelMiniProgram, nil
	}
	if ch, ok := fromProto(channelToProto, c); ok {
		return ch, nil
	}
	return "", fieldError("channel", "unknown signing channel")
}

var agreementStateToProto = map[service.AgreementState]papayv1.AgreementState{
	service.AgreementPending:    papayv1.AgreementState_AGREEMENT_STATE_PENDING,
	service.AgreementSigned:     papayv1.AgreementState_AGREEMENT_STATE_SIGNED,
	service.AgreementTerminated: papayv1.AgreementState_AGREEMENT_STATE_TERMINATED,
	service.AgreementExpired:    papayv1.AgreementState_AGREEMENT_STATE_EXPIRED,
}

func agreementStateFromProto(s papayv1.AgreementState) (service.AgreementState, error) {
	if s == papayv1.AgreementState_AGREEMENT_STATE_UNSPECIFIED {
		return "", nil
	}
	if st, ok := fromProto(agreementStateToProto, s); ok {
		return st, nil
	}
	return "", fieldError("state", "unknown agreement state")
}

func terminationModeToProto(m service.TerminationMode) papayv1.TerminationMode {
	switch m {
	case "":
		return papayv1.TerminationMode_TERMINATION_MODE_UNSPECIFIED
	case service.TerminatedByUser:
		return papayv1.TerminationMode_TERMINATION_MODE_USER
	case service.TerminatedByMerchant:
		return papayv1.TerminationMode_TERMINATION_MODE_MERCHANT
	case service.TerminatedByPlatform:
		return papayv1.TerminationMode_TERMINATION_MODE_PLATFORM
	case service.TerminatedByExpiry:
		return papayv1.TerminationMode_TERMINATION_MODE_EXPIRED
	}
	return papayv1.TerminationMode_TERMINATION_MODE_OTHER
}

// fromProto finds the domain value that m maps to p.
func fromProto[D, P comparable](m map[D]P, p P) (D, bool) {
	for d, v := range m {
		if v == p {
			return d, true
		}
	}
	var zero D
	return zero, false
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fieldError is an invalid-argument error for one field, raised by the
// conversion from proto (enum values the domain cannot represent).
func fieldError(field, desc string) error {
	return &service.Error{Kind: service.KindInvalid, Reason: "INVALID_ARGUMENT", Message: "invalid " + field + ": " + desc,
		Violations: []service.FieldViolation{{Field: field, Description: desc}}}
}

// refreshToProto converts a lookup's refresh outcome.
func refreshToProto(r service.Refresh) papayv1.RefreshStatus {
	switch r {
	case service.Refreshed:
		return papayv1.RefreshStatus_REFRESH_STATUS_REFRESHED
	case service.RefreshRateLimited:
		return papayv1.RefreshStatus_REFRESH_STATUS_RATE_LIMITED
	}
	return papayv1.RefreshStatus_REFRESH_STATUS_UNSPECIFIED
}
