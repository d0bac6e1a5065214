package rpc

import (
	"context"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// ChargeServer implements papay.v1.ChargeService over the domain.
type ChargeServer struct {
	papayv1.UnimplementedChargeServiceServer
	svc *service.Service
}

var _ papayv1.ChargeServiceServer = (*ChargeServer)(nil)

// NewChargeServer returns the ChargeService handlers.
func NewChargeServer(svc *service.Service) *ChargeServer {
	return &ChargeServer{svc: svc}
}

// CreateCharge deducts against a signed agreement.
func (s *ChargeServer) CreateCharge(ctx context.Context, req *papayv1.CreateChargeRequest) (*papayv1.CreateChargeResponse, error) {
	c, err := s.svc.CreateCharge(ctx, service.ChargeInput{
		OutTradeNo: req.GetOutTradeNo(), ContractID: req.GetContractId(),
		Amount:      service.Money{Total: req.GetAmount().GetTotal(), Currency: req.GetAmount().GetCurrency()},
		Description: req.GetDescription(), Attach: req.GetAttach(), GoodsTag: req.GetGoodsTag(),
		MerchantCategoryCode: req.GetMerchantCategoryCode(),
		SceneInfo:            service.SceneInfo{DeviceID: req.GetSceneInfo().GetDeviceId(), DeviceIP: req.GetSceneInfo().GetDeviceIp()},
	})
	if err != nil {
		return nil, err
	}
	return &papayv1.CreateChargeResponse{Charge: chargeToProto(c)}, nil
}

// GetCharge reads one charge.
func (s *ChargeServer) GetCharge(ctx context.Context, req *papayv1.GetChargeRequest) (*papayv1.GetChargeResponse, error) {
	c, st, err := s.svc.LookupCharge(ctx, service.ChargeKey{OutTradeNo: req.GetOutTradeNo(), TransactionID: req.GetTransactionId()}, req.GetRefresh())
	if err != nil {
		return nil, err
	}
	return &papayv1.GetChargeResponse{Charge: chargeToProto(c), RefreshStatus: refreshToProto(st)}, nil
}

// ListCharges pages through charges.
func (s *ChargeServer) ListCharges(ctx context.Context, req *papayv1.ListChargesRequest) (*papayv1.ListChargesResponse, error) {
	state, err := chargeStateFromProto(req.GetState())
	if err != nil {
		return nil, err
	}
	f := service.ChargeFilter{
		ContractID: req.GetContractId(), OutContractCode: req.GetOutContractCode(), OpenID: req.GetOpenid(),
		State: state, SubMchID: req.GetSubMchid(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	}
	if ts := req.GetCreateTimeStart(); ts != nil {
		if ts.CheckValid() != nil {
			return nil, fieldError("create_time_start", "is not a valid timestamp")
		}
		f.CreatedFrom = ts.AsTime()
	}
	if ts := req.GetCreateTimeEnd(); ts != nil {
		if ts.CheckValid() != nil {
			return nil, fieldError("create_time_end", "is not a valid timestamp")
		}
		f.CreatedTo = ts.AsTime()
	}
	cs, next, err := s.svc.ListCharges(ctx, f)
	if err != nil {
		return nil, err
	}
	resp := &papayv1.ListChargesResponse{NextPageToken: next, Charges: make([]*papayv1.Charge, 0, len(cs))}
	for _, c := range cs {
		resp.Charges = append(resp.Charges, chargeToProto(c))
	}
	return resp, nil
}

// CloseCharge closes an unpaid charge.
func (s *ChargeServer) CloseCharge(ctx context.Context, req *papayv1.CloseChargeRequest) (*papayv1.CloseChargeResponse, error) {
	c, err := s.svc.CloseCharge(ctx, req.GetOutTradeNo())
	if err != nil {
		return nil, err
	}
	return &papayv1.CloseChargeResponse{Charge: chargeToProto(c)}, nil
}

func chargeToProto(c service.Charge) *papayv1.Charge {
	p := &papayv1.Charge{
		OutTradeNo:           c.OutTradeNo,
		TransactionId:        c.TransactionID,
		ContractId:           c.ContractID,
		OutContractCode:      c.OutContractCode,
		Openid:               c.OpenID,
		SubMchid:             c.SubMchID,
		SpAppid:              c.SPAppID,
		SubAppid:             c.SubAppID,
		Amount:               &papayv1.Amount{Total: c.Amount.Total, Currency: c.Amount.Currency},
		PayerTotal:           c.PayerTotal,
		PayerCurrency:        c.PayerCurrency,
		Description:          c.Description,
		Attach:               c.Attach,
		GoodsTag:             c.GoodsTag,
		MerchantCategoryCode: c.MerchantCategoryCode,
		BankType:             c.BankType,
		TradeState:           c.TradeState,
		TradeStateDesc:       c.TradeStateDesc,
		State:                chargeStateToProto[c.State],
		FailureCode:          c.FailureCode,
		FailureMessage:       c.FailureMessage,
		SuccessTime:          timeToProto(c.SuccessTime),
		CreateTime:           timeToProto(c.CreateTime),
		UpdateTime:           timeToProto(c.UpdateTime),
		RefundedTotal:        c.RefundedTotal,
	}
	p.ExchangeRate = exchangeRateToProto(c.ExchangeRate)
	if c.SceneInfo != (service.SceneInfo{}) {
		p.SceneInfo = &papayv1.SceneInfo{DeviceId: c.SceneInfo.DeviceID, DeviceIp: c.SceneInfo.DeviceIP}
	}
	for _, pd := range c.PromotionDetail {
		pp := &papayv1.PromotionDetail{
			PromotionId: pd.PromotionID, Name: pd.Name, Scope: pd.Scope, Type: pd.Type, Amount: pd.Amount,
			Currency: pd.Currency, ActivityId: pd.ActivityID, WxpayContributeAmount: pd.WxpayContributeAmount,
			MerchantContributeAmount: pd.MerchantContributeAmount, OtherContributeAmount: pd.OtherContributeAmount,
		}
		for _, g := range pd.GoodsDetail {
			pp.GoodsDetail = append(pp.GoodsDetail, &papayv1.GoodsDetail{GoodsId: g.GoodsID, GoodsRemark: g.GoodsRemark,
				DiscountAmount: g.DiscountAmount, Quantity: g.Quantity, Price: g.Price})
		}
		p.PromotionDetail = append(p.PromotionDetail, pp)
	}
	return p
}

var chargeStateToProto = map[service.ChargeState]papayv1.ChargeState{
	service.ChargePending:    papayv1.ChargeState_CHARGE_STATE_PENDING,
	service.ChargeProcessing: papayv1.ChargeState_CHARGE_STATE_PROCESSING,
	service.ChargeSucceeded:  papayv1.ChargeState_CHARGE_STATE_SUCCEEDED,
	service.ChargeFailed:     papayv1.ChargeState_CHARGE_STATE_FAILED,
	service.ChargeClosed:     papayv1.ChargeState_CHARGE_STATE_CLOSED,
	service.ChargeClosing:    papayv1.ChargeState_CHARGE_STATE_CLOSING,
}

func chargeStateFromProto(s papayv1.ChargeState) (service.ChargeState, error) {
	if s == papayv1.ChargeState_CHARGE_STATE_UNSPECIFIED {
		return "", nil
	}
	if st, ok := fromProto(chargeStateToProto, s); ok {
		return st, nil
	}
	return "", fieldError("state", "unknown charge state")
}

// exchangeRateToProto is r, or nil when WeChat gave none.
func exchangeRateToProto(r service.ExchangeRate) *papayv1.ExchangeRate {
	if r == (service.ExchangeRate{}) {
		return nil
	}
	return &papayv1.ExchangeRate{Type: r.Type, Rate: r.Rate}
}
