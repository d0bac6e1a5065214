package sandbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// TradeState is the trade_state of a papay order.
type TradeState string

// Trade states of Global papay. The sandbox produces SUCCESS, PAYERROR, USERPAYING,
// CLOSED and REFUND (a paid order once a refund of it was accepted); NOTPAY is listed for
// clients that switch over the enum.
const (
	TradeSuccess    TradeState = "SUCCESS"
	TradeRefund     TradeState = "REFUND"
	TradeNotPay     TradeState = "NOTPAY"
	TradeClosed     TradeState = "CLOSED"
	TradePayError   TradeState = "PAYERROR"
	TradeUserPaying TradeState = "USERPAYING"
)

// Values of the transaction object.
const (
	TradeTypeAuth          = "AUTH"            // trade_type of every papay deduction
	ExchangeRateSettlement = "SETTLEMENT_RATE" // amount.exchange_rate.type
)

// tradeStateDesc is the trade_state_desc WeChat Pay writes for a state.
var tradeStateDesc = map[TradeState]string{
	TradeSuccess:    "支付成功",
	TradePayError:   "支付失败，余额不足",
	TradeUserPaying: "用户支付中",
	TradeClosed:     "已关闭",
	TradeRefund:     "转入退款",
}

// globalCurrencies is the ISO 4217 list of WeChat Pay Global (terms_definition).
var globalCurrencies = func() map[string]bool {
	m := map[string]bool{}
	for c := range strings.FieldsSeq("CNY HKD GBP USD JPY CAD AUD EUR NZD KRW THB SGD RUB CHF " +
		"SEK DKK NOK AED TRY MOP TWD CZK MYR PHP IDR MNT QAR HUF KHR ISK") {
		m[c] = true
	}
	return m
}()

// SceneInfo is the optional scene_info of a deduction, echoed in the transaction object.
type SceneInfo struct {
	DeviceID string `json:"device_id,omitempty"`
	DeviceIP string `json:"device_ip,omitempty"`
}

// TransactionResource is the transaction object: the deduction answer, the query answer
// and the plaintext of TRANSACTION.SUCCESS (institutional mode). Build one (or take
// Order.Resource), alter it and pass it to BuildNotification to forge notifications.
type TransactionResource struct {
	SPMchID              string            `json:"sp_mchid"`
	SubMchID             string            `json:"sub_mchid"`
	SPAppID              string            `json:"sp_appid"`
	SubAppID             string            `json:"sub_appid,omitempty"`
	OutTradeNo           string            `json:"out_trade_no"`
	TransactionID        string            `json:"transaction_id"`
	ContractID           string            `json:"contract_id"`
	TradeType            string            `json:"trade_type"`
	TradeState           TradeState        `json:"trade_state"`
	TradeStateDesc       string            `json:"trade_state_desc"`
	BankType             string            `json:"bank_type,omitempty"`
	Attach               string            `json:"attach,omitempty"`
	SuccessTime          string            `json:"success_time,omitempty"`
	MerchantCategoryCode string            `json:"merchant_category_code"`
	Payer                TransactionPayer  `json:"payer"`
	Amount               TransactionAmount `json:"amount"`
	SceneInfo            *SceneInfo        `json:"scene_info,omitempty"`
	PromotionDetail      []Promotion       `json:"promotion_detail,omitempty"`
}

// TransactionPayer is the payer of the transaction object.
type TransactionPayer struct {
	SPOpenID  string `json:"sp_openid"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

// TransactionAmount is the amount of the transaction object.
type TransactionAmount struct {
	Total         int64         `json:"total"`
	Currency      string        `json:"currency"`
	PayerTotal    int64         `json:"payer_total"`
	PayerCurrency string        `json:"payer_currency"`
	ExchangeRate  *ExchangeRate `json:"exchange_rate,omitempty"`
}

// ExchangeRate is amount.exchange_rate: Rate is ×10^8.
type ExchangeRate struct {
	Type string `json:"type"`
	Rate int64  `json:"rate"`
}

// Order is a ledger entry: an order created by a deduction request, with what the
// sandbox did to the payer.
type Order struct {
	SPMchID              string     `json:"sp_mchid"`
	SubMchID             string     `json:"sub_mchid"`
	SPAppID              string     `json:"sp_appid"`
	SubAppID             string     `json:"sub_appid,omitempty"`
	OutTradeNo           string     `json:"out_trade_no"`
	TransactionID        string     `json:"transaction_id"`
	ContractID           string     `json:"contract_id"`
	OpenID               string     `json:"openid"`               // the contract's user: sp_openid
	SubOpenID            string     `json:"sub_openid,omitempty"` // the user under sub_appid
	Description          string     `json:"description"`
	Attach               string     `json:"attach,omitempty"`
	NotifyURL            string     `json:"notify_url"`
	GoodsTag             string     `json:"goods_tag,omitempty"`
	MerchantCategoryCode string     `json:"merchant_category_code"`
	Total                int64      `json:"total"`
	Currency             string     `json:"currency"`
	SceneInfo            *SceneInfo `json:"scene_info,omitempty"`

	// PayerTotal is what the payer is charged in PayerCurrency at ExchangeRate (×10^8);
	// it is taken only when the order reaches SUCCESS.
	PayerTotal    int64         `json:"payer_total"`
	PayerCurrency string        `json:"payer_currency"`
	ExchangeRate  int64         `json:"exchange_rate"`
	BankType      string        `json:"bank_type"`
	Promotion     *Promotion    `json:"promotion,omitempty"`
	Behavior      PayerBehavior `json:"behavior"` // the payer behaviour of the last attempt

	TradeState     TradeState `json:"trade_state"`
	TradeStateDesc string     `json:"trade_state_desc"`
	CreateTime     time.Time  `json:"create_time"`
	SuccessTime    time.Time  `json:"success_time,omitzero"`
	ClosedTime     time.Time  `json:"closed_time,omitzero"`

	// Requests counts the deduction requests that named this order, replays included.
	Requests int `json:"requests"`
	// Deductions counts the times money was taken for this order (0 or 1).
	Deductions int `json:"deductions"`
	// Refunds counts the refunds accepted for this order; Refunded is what they take
	// off its total (every refund but CLOSED ones), never more than Total.
	Refunds  int   `json:"refunds"`
	Refunded int64 `json:"refunded"`

	seq        uint64
	lastRefund time.Time // real (monotonic) time of the last accepted refund
}

// orderKey identifies an order: out_trade_no is unique per sub-merchant.
type orderKey struct {
	subMchID   string
	outTradeNo string
}

// orderParams are the parameters a re-submitted out_trade_no must repeat exactly.
// scene_info describes where the request came from and is not compared.
type orderParams struct {
	spAppID, subAppID, description, attach, notifyURL, goodsTag, mcc, contractID string
	total                                                                        int64
	currency                                                                     string
}

func (o *Order) params() orderParams {
	return orderParams{o.SPAppID, o.SubAppID, o.Description, o.Attach, o.NotifyURL, o.GoodsTag,
		o.MerchantCategoryCode, o.ContractID, o.Total, o.Currency}
}

func (o *Order) clone() Order {
	out := *o
	if o.SceneInfo != nil {
		si := *o.SceneInfo
		out.SceneInfo = &si
	}
	out.Promotion = o.Promotion.clone()
	return out
}

// Resource returns the transaction object of the order as the API reports it and
// TRANSACTION.SUCCESS carries it.
// payer_total is 0 until the order is paid; success_time is set only when paid.
func (o Order) Resource() TransactionResource {
	t := TransactionResource{
		SPMchID: o.SPMchID, SubMchID: o.SubMchID, SPAppID: o.SPAppID, SubAppID: o.SubAppID,
		OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID, ContractID: o.ContractID,
		TradeType: TradeTypeAuth, TradeState: o.TradeState, TradeStateDesc: o.TradeStateDesc,
		BankType: o.BankType, Attach: o.Attach, SuccessTime: wechatTime(o.SuccessTime),
		MerchantCategoryCode: o.MerchantCategoryCode,
		Payer:                TransactionPayer{SPOpenID: o.OpenID, SubOpenID: o.SubOpenID},
		Amount: TransactionAmount{Total: o.Total, Currency: o.Currency, PayerCurrency: o.PayerCurrency,
			ExchangeRate: &ExchangeRate{Type: ExchangeRateSettlement, Rate: o.ExchangeRate}},
	}
	if o.TradeState == TradeSuccess || o.TradeState == TradeRefund {
		t.Amount.PayerTotal = o.PayerTotal
	}
	if o.SceneInfo != nil {
		si := *o.SceneInfo
		t.SceneInfo = &si
	}
	if o.Promotion != nil {
		t.PromotionDetail = []Promotion{*o.Promotion.clone()}
	}
	return t
}

// Order returns the ledger entry of out_trade_no (the newest, should two sub-merchants
// have used the number; Orders lists them all).
func (s *Sandbox) Order(outTradeNo string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *Order
	for k, o := range s.orders {
		if k.outTradeNo == outTradeNo && (found == nil || o.seq > found.seq) {
			found = o
		}
	}
	if found == nil {
		return Order{}, false
	}
	return s.orderViewLocked(found), true
}

// orderViewLocked copies o for the ledger views, with its refund counts.
func (s *Sandbox) orderViewLocked(o *Order) Order {
	out := o.clone()
	out.Refunds, out.Refunded = len(s.refundsOf[o]), refundedLocked(s.refundsOf[o])
	return out
}

// Orders returns the ledger, oldest order first: copies of every order, with
// out_trade_no, transaction_id, trade_state, amount and Deductions. It copies the
// ledger under the lock and nothing more (no sorting, no I/O).
func (s *Sandbox) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, len(s.ledger))
	for i, o := range s.ledger {
		out[i] = s.orderViewLocked(o)
	}
	return out
}

// Deductions returns how many times money was taken, over all orders.
func (s *Sandbox) Deductions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, o := range s.orders {
		n += o.Deductions
	}
	return n
}

// deductionRequest is the body of POST /v3/global/papay/transactions.
type deductionRequest struct {
	SubMchID             string `json:"sub_mchid"`
	SPAppID              string `json:"sp_appid"`
	SubAppID             string `json:"sub_appid"`
	Description          string `json:"description"`
	Attach               string `json:"attach"`
	NotifyURL            string `json:"notify_url"`
	OutTradeNo           string `json:"out_trade_no"`
	GoodsTag             string `json:"goods_tag"`
	MerchantCategoryCode string `json:"merchant_category_code"`
	ContractID           string `json:"contract_id"`
	Amount               *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	SceneInfo *SceneInfo `json:"scene_info"`
}

// checkDeduction validates the body in the order of the API's field table and returns
// the order it describes.
func checkDeduction(req *deductionRequest) (*Order, *apiError) {
	c := fieldChecker{location: locBody}
	c.str("sub_mchid", req.SubMchID, 32, true)
	c.str("sp_appid", req.SPAppID, 32, true)
	c.str("sub_appid", req.SubAppID, 32, false)
	c.str("description", req.Description, 128, true)
	c.str("attach", req.Attach, 127, false)
	c.notifyURL("notify_url", req.NotifyURL, true)
	c.outTradeNo("out_trade_no", req.OutTradeNo)
	c.str("goods_tag", req.GoodsTag, 32, false)
	c.str("merchant_category_code", req.MerchantCategoryCode, 16, true)
	c.str("contract_id", req.ContractID, 64, true)
	o := &Order{
		SubMchID: req.SubMchID, SPAppID: req.SPAppID, SubAppID: req.SubAppID,
		Description: req.Description, Attach: req.Attach, NotifyURL: req.NotifyURL,
		OutTradeNo: req.OutTradeNo, GoodsTag: req.GoodsTag,
		MerchantCategoryCode: req.MerchantCategoryCode, ContractID: req.ContractID,
	}
	switch a := req.Amount; {
	case c.err != nil:
	case a == nil:
		c.fail("amount", nil, "is required")
	case a.Total == nil:
		c.fail("amount/total", nil, "is required")
	case *a.Total <= 0:
		c.fail("amount/total", *a.Total, "must be a positive integer (minor units of the currency)")
	case c.str("amount/currency", a.Currency, 16, true) && !globalCurrencies[a.Currency]:
		c.fail("amount/currency", a.Currency, "must be an ISO 4217 currency supported by WeChat Pay Global")
	default:
		o.Total, o.Currency = *a.Total, a.Currency
	}
	if si := req.SceneInfo; si != nil {
		c.str("scene_info/device_id", si.DeviceID, 32, false)
		if c.str("scene_info/device_ip", si.DeviceIP, 45, false) && net.ParseIP(si.DeviceIP) == nil {
			c.fail("scene_info/device_ip", si.DeviceIP, "must be an IP address")
		}
		if *si != (SceneInfo{}) {
			copied := *si
			o.SceneInfo = &copied
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return o, nil
}

// outTradeNo checks a merchant order number: 1 to 32 letters, digits and _-|*@.
func (c *fieldChecker) outTradeNo(field, v string) { c.merchantNo(field, v, 32) }

// merchantNo checks a required merchant number (out_trade_no, out_refund_no): 1 to max
// letters, digits and _-|*@.
func (c *fieldChecker) merchantNo(field, v string, max int) {
	if !c.str(field, v, max, true) {
		return
	}
	if strings.ContainsFunc(v, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("_-|*@", r))
	}) {
		c.fail(field, v, "may contain only letters, digits and _-|*@")
	}
}

// deduction is the outcome of a deduction request.
type deduction struct {
	order  Order         // the order after the request
	fresh  bool          // this request attempted the deduction: the payer behaviour applies
	paid   bool          // this request took the money
	delay  time.Duration // SLOW: answer delay
	err    *apiError
	notice string // id of the TRANSACTION.SUCCESS sent, if any
}

// deduct applies a validated deduction request to the ledger atomically, so that
// concurrent identical requests deduct once.
func (s *Sandbox) deduct(req *Order) deduction {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	key := orderKey{req.SubMchID, req.OutTradeNo}
	o := s.orders[key]
	if o != nil {
		o.Requests++
		switch {
		case o.TradeState == TradeClosed:
			return deduction{err: orderError(http.StatusBadRequest, CodeOrderClosed,
				"the order is closed; its out_trade_no cannot be used again")}
		case o.params() != req.params():
			return deduction{err: orderError(http.StatusBadRequest, CodeOutTradeNoUsed,
				"out_trade_no was already used with other parameters")}
		case o.TradeState != TradePayError:
			return deduction{order: o.clone()} // a replay: the order as it stands
		}
		// A failed (unpaid) order may be tried again with the same out_trade_no.
	}
	c := s.contracts[req.ContractID]
	if c == nil || c.State != StateSigned || c.SubMchID != req.SubMchID {
		return deduction{err: noAuth("the contract does not exist or has been terminated")}
	}
	if o == nil {
		o = req
		o.SPMchID, o.CreateTime, o.Requests = s.creds.MchID, now, 1
		s.orderSeq++
		o.seq = s.orderSeq
		for {
			o.TransactionID = newTransactionID(now)
			if _, taken := s.byTransaction[o.TransactionID]; !taken {
				break
			}
		}
		s.orders[key] = o
		s.byTransaction[o.TransactionID] = o
		s.ledger = append(s.ledger, o)
	}
	payer := s.payerLocked(c.OpenID)
	o.OpenID = c.OpenID
	o.SubOpenID = ""
	if subAppID := cmp.Or(o.SubAppID, c.SubAppID); subAppID != "" {
		o.SubOpenID = derivedOpenID(subAppID, c.OpenID)
	}
	o.Behavior, o.BankType = payer.behavior(), payer.bankType()
	o.PayerCurrency, o.ExchangeRate = payer.rate(o.Currency)
	o.Promotion = nil
	charged := o.Total
	if p := payer.Promotion; p != nil {
		o.Promotion = p.clone()
		o.Promotion.Amount = min(p.Amount, o.Total)
		o.Promotion.Currency = cmp.Or(p.Currency, o.Currency)
		if p.WxpayContributeAmount == 0 && p.MerchantContributeAmount == 0 && p.OtherContributeAmount == 0 {
			o.Promotion.WxpayContributeAmount = o.Promotion.Amount
		}
		charged -= o.Promotion.Amount
	}
	o.PayerTotal = ConvertAmount(charged, o.ExchangeRate)

	d := deduction{fresh: true}
	switch {
	case o.Behavior == BehaviorInsufficientBalance || !payer.canPay(o.PayerTotal):
		o.TradeState, o.TradeStateDesc = TradePayError, tradeStateDesc[TradePayError]
		d = deduction{err: &apiError{status: http.StatusForbidden, Code: CodeNotEnough, Message: "balance insufficient"}}
	case o.Behavior == BehaviorUserPaying:
		o.TradeState, o.TradeStateDesc = TradeUserPaying, tradeStateDesc[TradeUserPaying]
		s.settleLaterLocked(key, payer.settleAfter())
	default:
		s.payLocked(o, payer, now)
		d.paid, d.delay = true, payer.slowDelay()
	}
	d.order = o.clone()
	return d
}

// payLocked takes the money: SUCCESS, the balance lowered.
func (s *Sandbox) payLocked(o *Order, payer *PayerConfig, now time.Time) {
	o.TradeState, o.TradeStateDesc, o.SuccessTime = TradeSuccess, tradeStateDesc[TradeSuccess], now
	o.Deductions++
	if payer.Balance != nil {
		*payer.Balance -= o.PayerTotal
	}
}

// settleLaterLocked settles a USERPAYING order after d unless it is reversed (or the
// sandbox closed) first. The pending settlement counts for WaitIdle.
func (s *Sandbox) settleLaterLocked(key orderKey, d time.Duration) {
	s.noteSettleLocked(key, d)
	s.laterLocked(d, func() {
		if o, ok := s.settle(key); ok {
			s.notifyTransaction(o)
		}
	})
}

// laterLocked runs fn after d (real time) unless the sandbox closes first.
// fn counts for WaitIdle until it returns: what it notifies is not missed.
func (s *Sandbox) laterLocked(d time.Duration, fn func()) {
	if s.closed {
		return
	}
	s.inflight++
	s.broadcastLocked()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.inflight--
			s.broadcastLocked()
			s.mu.Unlock()
		}()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		fn()
	}()
}

// settle moves a USERPAYING order to SUCCESS, or to PAYERROR if the balance no longer
// covers it; a reversed order stays CLOSED.
func (s *Sandbox) settle(key orderKey) (Order, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[key]
	if o == nil || o.TradeState != TradeUserPaying {
		return Order{}, false
	}
	payer := s.payerLocked(o.OpenID)
	if !payer.canPay(o.PayerTotal) {
		o.TradeState, o.TradeStateDesc = TradePayError, tradeStateDesc[TradePayError]
		return Order{}, false
	}
	s.payLocked(o, payer, now)
	return o.clone(), true
}

// notifyTransaction sends TRANSACTION.SUCCESS for a paid order and returns its id.
func (s *Sandbox) notifyTransaction(o Order) string {
	return s.notify(o.NotifyURL, EventTransactionSuccess, o.Resource(),
		slog.String("out_trade_no", o.OutTradeNo), slog.String("transaction_id", o.TransactionID))
}

// handleDeduct serves POST /v3/global/papay/transactions.
func (s *Sandbox) handleDeduct(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // already buffered by routeAPI
	var req deductionRequest
	if e := decodeBody(body, &req); e != nil {
		writeAPIError(w, e)
		return
	}
	o, e := checkDeduction(&req)
	if e == nil {
		e = s.authorize(req.SubMchID, req.SPAppID)
	}
	var d deduction
	if e == nil {
		d = s.deduct(o)
		e = d.err
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	if d.paid {
		d.notice = s.notifyTransaction(d.order)
	}
	if d.fresh {
		switch d.order.Behavior {
		case BehaviorSlow:
			s.sleep(r.Context(), d.delay)
		case BehaviorNoAnswer:
			s.log.Info("sandbox: NO_ANSWER: dropping the deduction response",
				slog.String("out_trade_no", d.order.OutTradeNo))
			panic(http.ErrAbortHandler) // net/http closes the connection without a response
		case BehaviorNotifyFirst:
			s.waitAcknowledged(r.Context(), d.notice)
		}
	}
	writeJSON(w, http.StatusOK, d.order.Resource())
}

// sleep waits d, or until the client or the sandbox gives up.
func (s *Sandbox) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// waitAcknowledged waits until notification id was acknowledged or given up, at most
// NotifyFirstBound, and no longer than the client or the sandbox waits.
func (s *Sandbox) waitAcknowledged(ctx context.Context, id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, NotifyFirstBound)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	s.waitLog(ctx, func() bool {
		for _, d := range s.deliveries {
			if d.NotificationID == id && d.Final {
				return true
			}
		}
		return false
	})
}

// checkOrderQuery validates the path parameter and the sub_mchid query parameter of
// both order queries, and that the provider may act for the sub-merchant.
func (s *Sandbox) checkOrderQuery(pathField, pathValue string, r *http.Request) (string, *apiError) {
	path := fieldChecker{location: locPath}
	path.str(pathField, pathValue, 32, true)
	query := fieldChecker{location: locQuery}
	subMchID := r.URL.Query().Get("sub_mchid")
	query.str("sub_mchid", subMchID, 32, true)
	if e := firstError(path.err, query.err); e != nil {
		return "", e
	}
	return subMchID, s.authorizeSubMchID(subMchID)
}

// authorizeSubMchID checks that the service provider may act for subMchID.
func (s *Sandbox) authorizeSubMchID(subMchID string) *apiError {
	if !s.subMchIDs[subMchID] {
		return noAuth(fmt.Sprintf("sub_mchid %s has no acceptance relationship with mchid %s",
			subMchID, s.creds.MchID))
	}
	return nil
}

// handleQueryByTransactionID serves GET /v3/global/papay/transactions/{transaction_id}.
func (s *Sandbox) handleQueryByTransactionID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("transaction_id")
	subMchID, e := s.checkOrderQuery("transaction_id", id, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	o, ok := s.byTransaction[id]
	var out Order
	if ok {
		out = o.clone()
	}
	s.mu.Unlock()
	s.writeOrder(w, out, ok && out.SubMchID == subMchID)
}

// handleQueryByOutTradeNo serves GET /v3/global/papay/transactions/out-trade-no/{out_trade_no}
// (and the out_trade_no spelling of the official examples).
func (s *Sandbox) handleQueryByOutTradeNo(w http.ResponseWriter, r *http.Request) {
	no := r.PathValue("out_trade_no")
	subMchID, e := s.checkOrderQuery("out_trade_no", no, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	o, ok := s.orders[orderKey{subMchID, no}]
	var out Order
	if ok {
		out = o.clone()
	}
	s.mu.Unlock()
	s.writeOrder(w, out, ok)
}

func (s *Sandbox) writeOrder(w http.ResponseWriter, o Order, found bool) {
	if !found {
		writeAPIError(w, orderError(http.StatusNotFound, CodeOrderNotExist, "the order does not exist"))
		return
	}
	writeJSON(w, http.StatusOK, o.Resource())
}

// handleReverse serves POST /v3/global/papay/transactions/out-trade-no/{out_trade_no}/reverse:
// sub_mchid in the JSON body (the documented form) or the query string.
func (s *Sandbox) handleReverse(w http.ResponseWriter, r *http.Request) {
	no := r.PathValue("out_trade_no")
	path := fieldChecker{location: locPath}
	path.str("out_trade_no", no, 32, true)
	if path.err != nil {
		writeAPIError(w, path.err)
		return
	}
	body, _ := io.ReadAll(r.Body) // already buffered by routeAPI
	var req struct {
		SubMchID string `json:"sub_mchid"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if e := decodeBody(body, &req); e != nil {
			writeAPIError(w, e)
			return
		}
	}
	c := fieldChecker{location: locBody}
	subMchID := req.SubMchID
	if q := r.URL.Query().Get("sub_mchid"); subMchID == "" && q != "" {
		c.location, subMchID = locQuery, q
	}
	c.str("sub_mchid", subMchID, 32, true)
	e := c.err
	if e == nil {
		e = s.authorizeSubMchID(subMchID)
	}
	if e == nil {
		e = s.reverse(orderKey{subMchID, no})
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// reverse closes an unpaid order.
func (s *Sandbox) reverse(key orderKey) *apiError {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[key]
	switch {
	case o == nil:
		return notFound("the order does not exist")
	case o.TradeState == TradeSuccess || o.TradeState == TradeRefund:
		return orderError(http.StatusBadRequest, CodeOrderPaid,
			"the order is paid and cannot be closed; use the refund API")
	case o.TradeState == TradeClosed:
		return orderError(http.StatusBadRequest, CodeOrderClosed, "the order is already closed")
	}
	o.TradeState, o.TradeStateDesc, o.ClosedTime = TradeClosed, tradeStateDesc[TradeClosed], now
	return nil
}

// ErrOrderNotFound is the control API's error for an unknown out_trade_no.
var ErrOrderNotFound = errors.New("sandbox: order not found")
