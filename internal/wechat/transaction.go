package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/papayd/papayd/internal/service"
)

const transactionsPath = "/v3/global/papay/transactions"

// transactionBody is the body of the deduction call; empty optional
// fields are omitted.
type transactionBody struct {
	SPAppID              string         `json:"sp_appid"`
	SubMchID             string         `json:"sub_mchid"`
	SubAppID             string         `json:"sub_appid,omitempty"`
	Description          string         `json:"description"`
	Attach               string         `json:"attach,omitempty"`
	NotifyURL            string         `json:"notify_url"`
	OutTradeNo           string         `json:"out_trade_no"`
	GoodsTag             string         `json:"goods_tag,omitempty"`
	MerchantCategoryCode string         `json:"merchant_category_code"`
	ContractID           string         `json:"contract_id"`
	Amount               amountBody     `json:"amount"`
	SceneInfo            *sceneInfoBody `json:"scene_info,omitempty"`
}

type amountBody struct {
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
}

type sceneInfoBody struct {
	DeviceID string `json:"device_id,omitempty"`
	DeviceIP string `json:"device_ip,omitempty"`
}

// CreateTransaction deducts req.Amount against req.ContractID. WeChat
// answers synchronously with the transaction object, or refuses with a
// *service.RemoteError (e.g. NOT_ENOUGH, OUT_TRADE_NO_USED). An answer that
// does not come (timeout), does not verify, does not decode, has no
// trade_state, or names another order wraps service.ErrWeChatUnavailable:
// the money may or may not have moved, so the order must be queried. So
// does a refusal that answers a retry (see Client) after an attempt whose
// outcome is unknown. A 200 answer without out_trade_no is taken to be
// about req.OutTradeNo.
func (c *Client) CreateTransaction(ctx context.Context, req service.TransactionRequest) (service.RemoteTransaction, error) {
	b := transactionBody{
		SPAppID: req.SPAppID, SubMchID: req.SubMchID, SubAppID: req.SubAppID, Description: req.Description,
		Attach: req.Attach, NotifyURL: req.NotifyURL, OutTradeNo: req.OutTradeNo, GoodsTag: req.GoodsTag,
		MerchantCategoryCode: req.MerchantCategoryCode, ContractID: req.ContractID,
		Amount: amountBody{Total: req.Amount.Total, Currency: req.Amount.Currency},
	}
	if req.SceneInfo != (service.SceneInfo{}) {
		b.SceneInfo = &sceneInfoBody{DeviceID: req.SceneInfo.DeviceID, DeviceIP: req.SceneInfo.DeviceIP}
	}
	body, err := marshal(b)
	if err != nil {
		return service.RemoteTransaction{}, fmt.Errorf("wechatpay create transaction: %w", err)
	}
	// A refusal (OUT_TRADE_NO_USED, ORDER_PAID, ...) answering a retry of
	// an attempt whose outcome is unknown may be about that attempt's
	// success: it is an unknown outcome, and the order must be queried.
	a, err := c.call(ctx, callSpec{sdk: c.sdk, method: http.MethodPost, path: transactionsPath, body: body, refusalAfterUnknown: true})
	if err != nil {
		return service.RemoteTransaction{}, err
	}
	return c.transactionAnswer(ctx, http.MethodPost, transactionsPath, a.body,
		service.TransactionQuery{SubMchID: req.SubMchID, OutTradeNo: req.OutTradeNo})
}

// queryTransaction reads an order by q.TransactionID, or by q.OutTradeNo
// when TransactionID is empty; QueryTransaction limits it. An order WeChat
// does not know is a *service.RemoteError (404 / ORDER_NOT_EXIST / NOT_FOUND). An answer that
// does not decode, has no trade_state, or names another order wraps
// service.ErrWeChatUnavailable.
func (c *Client) queryTransaction(ctx context.Context, q service.TransactionQuery) (service.RemoteTransaction, error) {
	var path string
	switch {
	case q.TransactionID != "":
		seg, err := pathSegment(q.TransactionID)
		if err != nil {
			return service.RemoteTransaction{}, fmt.Errorf("wechatpay query transaction: transaction id: %w", err)
		}
		path = transactionsPath + "/" + seg
		q.OutTradeNo = "" // the answer is matched on what was asked
	case q.OutTradeNo != "":
		seg, err := pathSegment(q.OutTradeNo)
		if err != nil {
			return service.RemoteTransaction{}, fmt.Errorf("wechatpay query transaction: out_trade_no: %w", err)
		}
		path = transactionsPath + "/out-trade-no/" + seg
	default:
		return service.RemoteTransaction{}, errors.New("wechatpay query transaction: no transaction id and no out_trade_no")
	}
	answer, err := c.do(ctx, http.MethodGet, path, url.Values{"sub_mchid": {q.SubMchID}}, nil)
	if err != nil {
		return service.RemoteTransaction{}, err
	}
	return c.transactionAnswer(ctx, http.MethodGet, path, answer, q)
}

// transactionAnswer parses a verified transaction answer and checks that
// it is about the order asked for (want's non-empty fields); a key the
// answer leaves out is taken from want.
func (c *Client) transactionAnswer(ctx context.Context, method, path string, answer []byte, want service.TransactionQuery) (service.RemoteTransaction, error) {
	t, err := parseTransaction(answer)
	switch {
	case err != nil:
		return service.RemoteTransaction{}, c.unusable(ctx, method, path, "transaction answer does not decode")
	case t.TradeState == "":
		return service.RemoteTransaction{}, c.unusable(ctx, method, path, "transaction answer has no trade_state")
	case mismatch(t.SubMchID, want.SubMchID) || mismatch(t.OutTradeNo, want.OutTradeNo) || mismatch(t.TransactionID, want.TransactionID):
		return service.RemoteTransaction{}, c.unusable(ctx, method, path, "transaction answer names another order")
	}
	t.SubMchID = first(t.SubMchID, want.SubMchID)
	t.OutTradeNo = first(t.OutTradeNo, want.OutTradeNo)
	t.TransactionID = first(t.TransactionID, want.TransactionID)
	return t, nil
}

// mismatch reports whether got and want are both set and differ.
func mismatch(got, want string) bool { return got != "" && want != "" && got != want }

type reverseBody struct {
	SubMchID string `json:"sub_mchid"`
}

// ReverseTransaction closes an unpaid order; WeChat answers 204 without a
// body. A paid order is a *service.RemoteError with Code ORDER_PAID, a
// closed one ORDER_CLOSED, an unknown one NOT_FOUND.
func (c *Client) ReverseTransaction(ctx context.Context, subMchID, outTradeNo string) error {
	seg, err := pathSegment(outTradeNo)
	if err != nil {
		return fmt.Errorf("wechatpay reverse transaction: out_trade_no: %w", err)
	}
	body, err := marshal(reverseBody{SubMchID: subMchID})
	if err != nil {
		return fmt.Errorf("wechatpay reverse transaction: %w", err)
	}
	_, err = c.do(ctx, http.MethodPost, transactionsPath+"/out-trade-no/"+seg+"/reverse", nil, body)
	return err
}
