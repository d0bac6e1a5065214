package wechat

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// transactionObject is WeChat's transaction object: the deduction answer,
// the order query answer and the TRANSACTION.SUCCESS resource. Unknown
// fields are ignored. Amounts are integers (a JSON number, or a string of
// digits), never floats; descriptive texts are loose; identifiers, states
// and currencies must be strings.
type transactionObject struct {
	SubMchID   string `json:"sub_mchid"`
	SubAppID   string `json:"sub_appid"`
	OutTradeNo string `json:"out_trade_no"`
	// TransactionID is "transaction_id" since the 2025 docs; ID is the
	// older name, still used by the generic payment notification.
	TransactionID        string             `json:"transaction_id"`
	ID                   string             `json:"id"`
	ContractID           string             `json:"contract_id"`
	TradeType            looseString        `json:"trade_type"`
	TradeState           string             `json:"trade_state"`
	TradeStateDesc       looseString        `json:"trade_state_desc"`
	BankType             looseString        `json:"bank_type"`
	Attach               string             `json:"attach"`
	SuccessTime          looseTime          `json:"success_time"`
	MerchantCategoryCode looseString        `json:"merchant_category_code"`
	Amount               *transactionAmount `json:"amount"`
	Payer                *transactionPayer  `json:"payer"`
	PromotionDetail      []promotionObject  `json:"promotion_detail"`
}

type transactionAmount struct {
	Total         flexInt       `json:"total"`
	Currency      string        `json:"currency"`
	PayerTotal    flexInt       `json:"payer_total"`
	PayerCurrency string        `json:"payer_currency"`
	ExchangeRate  *exchangeRate `json:"exchange_rate"`
}

type exchangeRate struct {
	Type looseString `json:"type"`
	Rate flexInt     `json:"rate"` // the rate times 10^8
}

type transactionPayer struct {
	SPOpenID  string `json:"sp_openid"`
	SubOpenID string `json:"sub_openid"`
	OpenID    string `json:"openid"` // direct mode
}

type promotionObject struct {
	PromotionID string      `json:"promotion_id"`
	Name        looseString `json:"name"`
	Scope       looseString `json:"scope"`
	Type        looseString `json:"type"`
	Amount      flexInt     `json:"amount"`
	Currency    string      `json:"currency"`
	ActivityID  looseString `json:"activity_id"`
	// Papay says wxpay_contribute_amount; the generic Global transaction
	// object says wechatpay_contribute_amount.
	WxpayContributeAmount     *flexInt      `json:"wxpay_contribute_amount"`
	WechatpayContributeAmount *flexInt      `json:"wechatpay_contribute_amount"`
	MerchantContributeAmount  flexInt       `json:"merchant_contribute_amount"`
	OtherContributeAmount     flexInt       `json:"other_contribute_amount"`
	GoodsDetail               []goodsObject `json:"goods_detail"`
}

type goodsObject struct {
	GoodsID        string      `json:"goods_id"`
	GoodsRemark    looseString `json:"goods_remark"`
	DiscountAmount flexInt     `json:"discount_amount"`
	Quantity       flexInt     `json:"quantity"`
	Price          flexInt     `json:"price"`
}

var errNotTransaction = errors.New("not a transaction object")

// parseTransaction decodes a transaction object. The error names no
// field value.
func parseTransaction(b []byte) (service.RemoteTransaction, error) {
	var o *transactionObject
	if err := json.Unmarshal(b, &o); err != nil || o == nil {
		return service.RemoteTransaction{}, errNotTransaction
	}
	return o.remote(), nil
}

// remote is the transaction o describes.
func (o *transactionObject) remote() service.RemoteTransaction {
	t := service.RemoteTransaction{
		SubMchID: o.SubMchID, OutTradeNo: o.OutTradeNo, TransactionID: first(o.TransactionID, o.ID),
		ContractID: o.ContractID, TradeType: string(o.TradeType), TradeState: o.TradeState,
		TradeStateDesc: string(o.TradeStateDesc), BankType: string(o.BankType), Attach: o.Attach,
		SuccessTime: time.Time(o.SuccessTime), MerchantCategoryCode: string(o.MerchantCategoryCode),
	}
	if a := o.Amount; a != nil {
		t.Amount = service.Money{Total: int64(a.Total), Currency: a.Currency}
		t.PayerTotal, t.PayerCurrency = int64(a.PayerTotal), a.PayerCurrency
		if r := a.ExchangeRate; r != nil {
			t.ExchangeRate = service.ExchangeRate{Type: string(r.Type), Rate: int64(r.Rate)}
		}
	}
	if p := o.Payer; p != nil {
		t.SPOpenID, t.SubOpenID = p.SPOpenID, p.SubOpenID
		// openid is the user under the app that paid: the sub-merchant's
		// app when there is one (as in the contract notification).
		switch {
		case p.OpenID == "":
		case o.SubAppID != "" && t.SubOpenID == "":
			t.SubOpenID = p.OpenID
		case o.SubAppID == "" && t.SPOpenID == "":
			t.SPOpenID = p.OpenID
		}
	}
	for _, p := range o.PromotionDetail {
		d := service.PromotionDetail{
			PromotionID: p.PromotionID, Name: string(p.Name), Scope: string(p.Scope), Type: string(p.Type),
			Amount: int64(p.Amount), Currency: p.Currency, ActivityID: string(p.ActivityID),
			MerchantContributeAmount: int64(p.MerchantContributeAmount), OtherContributeAmount: int64(p.OtherContributeAmount),
		}
		if c := p.WxpayContributeAmount; c != nil {
			d.WxpayContributeAmount = int64(*c)
		} else if c := p.WechatpayContributeAmount; c != nil {
			d.WxpayContributeAmount = int64(*c)
		}
		for _, g := range p.GoodsDetail {
			d.GoodsDetail = append(d.GoodsDetail, service.GoodsDetail{
				GoodsID: g.GoodsID, GoodsRemark: string(g.GoodsRemark), DiscountAmount: int64(g.DiscountAmount),
				Quantity: int64(g.Quantity), Price: int64(g.Price),
			})
		}
		t.PromotionDetail = append(t.PromotionDetail, d)
	}
	return t
}
