package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// refundObject is WeChat's refund object: the refund answer, the refund
// query answer and the resource of REFUND.SUCCESS, REFUND.CLOSED and
// REFUND.ABNORMAL. Answers name the refund "id", its status "status" and
// the account "recv_account"; notifications say "refund_id",
// "refund_status" and "user_received_account". Both spellings are read,
// the answer's first. Unknown fields are ignored; amounts are integers (a
// JSON number or a string of digits); descriptive texts are loose;
// identifiers, statuses and currencies must be strings.
type refundObject struct {
	SpMchID             string        `json:"sp_mchid"`
	MchID               string        `json:"mchid"`
	SubMchID            string        `json:"sub_mchid"`
	ID                  string        `json:"id"`
	RefundID            string        `json:"refund_id"`
	OutRefundNo         string        `json:"out_refund_no"`
	TransactionID       string        `json:"transaction_id"`
	OutTradeNo          string        `json:"out_trade_no"`
	Status              string        `json:"status"`
	RefundStatus        string        `json:"refund_status"`
	Channel             looseString   `json:"channel"`
	RecvAccount         looseString   `json:"recv_account"`
	UserReceivedAccount looseString   `json:"user_received_account"`
	FundSource          looseString   `json:"fund_source"`
	SuccessTime         looseTime     `json:"success_time"`
	CreateTime          looseTime     `json:"create_time"`
	Amount              *refundAmount `json:"amount"`
}

type refundAmount struct {
	Refund        flexInt    `json:"refund"`
	Total         flexInt    `json:"total"`
	Currency      string     `json:"currency"`
	PayerRefund   flexInt    `json:"payer_refund"`
	PayerTotal    flexInt    `json:"payer_total"`
	PayerCurrency string     `json:"payer_currency"`
	ExchangeRate  refundRate `json:"exchange_rate"`
}

// refundRate is amount.exchange_rate: the object {type, rate} of the
// transaction object, or (read liberally) the bare rate ×10^8.
type refundRate service.ExchangeRate

var errNotRate = errors.New("not an exchange rate")

func (r *refundRate) UnmarshalJSON(b []byte) error {
	*r = refundRate{}
	switch b = bytes.TrimSpace(b); {
	case len(b) == 0:
		return errNotRate
	case b[0] == '{':
		var o exchangeRate
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = refundRate{Type: string(o.Type), Rate: int64(o.Rate)}
		return nil
	default:
		var n flexInt
		if err := n.UnmarshalJSON(b); err != nil {
			return errNotRate
		}
		r.Rate = int64(n)
		return nil
	}
}

var errNotRefund = errors.New("not a refund object")

// parseRefund decodes a refund object. Status is kept as given ("" when
// absent). The error names no field value.
func parseRefund(b []byte) (service.RemoteRefund, error) {
	var o *refundObject
	if err := json.Unmarshal(b, &o); err != nil || o == nil {
		return service.RemoteRefund{}, errNotRefund
	}
	r := service.RemoteRefund{
		SpMchID: first(o.SpMchID, o.MchID), SubMchID: o.SubMchID, RefundID: first(o.ID, o.RefundID),
		OutRefundNo: o.OutRefundNo, TransactionID: o.TransactionID, OutTradeNo: o.OutTradeNo,
		Status: first(o.Status, o.RefundStatus), Channel: string(o.Channel),
		RecvAccount: first(string(o.RecvAccount), string(o.UserReceivedAccount)), FundSource: string(o.FundSource),
		SuccessTime: time.Time(o.SuccessTime), CreateTime: time.Time(o.CreateTime),
	}
	if a := o.Amount; a != nil {
		r.Refund, r.Total, r.Currency = int64(a.Refund), int64(a.Total), a.Currency
		r.PayerRefund, r.PayerTotal, r.PayerCurrency = int64(a.PayerRefund), int64(a.PayerTotal), a.PayerCurrency
		r.ExchangeRate = service.ExchangeRate(a.ExchangeRate)
	}
	return r, nil
}

// refundEventStatus is the refund_status an event type implies, for a
// REFUND.* resource that leaves refund_status out.
var refundEventStatus = map[string]string{
	service.NotificationRefundSuccess:  service.RefundStatusSuccess,
	service.NotificationRefundClosed:   service.RefundStatusClosed,
	service.NotificationRefundAbnormal: service.RefundStatusAbnormal,
}

// decodeRefundEvent decodes the resource of a REFUND.* notification. It
// must name the refund (out_refund_no); a missing refund_status is taken
// from the event type. Other fields are kept as WeChat gives them.
func decodeRefundEvent(eventType string, plain []byte) (*service.RemoteRefund, error) {
	r, err := parseRefund(plain)
	if err != nil {
		return nil, malformed("resource is not a refund object")
	}
	if r.OutRefundNo == "" {
		return nil, malformed("refund resource has no out_refund_no")
	}
	if r.Status == "" {
		r.Status = refundEventStatus[eventType]
	}
	return &r, nil
}
