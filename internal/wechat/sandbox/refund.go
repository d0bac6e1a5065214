package sandbox

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// RefundStatus is the status of a refund (query "status", notification
// "refund_status").
type RefundStatus string

// Refund statuses the sandbox produces. REFUNDCLOSE, the older spelling of CLOSED, is
// never produced.
const (
	RefundSuccess    RefundStatus = "SUCCESS"
	RefundProcessing RefundStatus = "PROCESSING"
	RefundAbnormal   RefundStatus = "ABNORMAL"
	RefundClosed     RefundStatus = "CLOSED"
)

// Values of the refund object.
const (
	RefundChannelOriginal = "ORIGINAL"                      // channel: back the way it was paid
	RefundFundsUnsettled  = "REFUND_SOURCE_UNSETTLED_FUNDS" // fund_source
	RefundRecvAccount     = "支付用户零钱"                        // recv_account: the payer's WeChat balance
)

// Limits of the refund API (WeChat Pay Global, chapter 3.4.3).
const (
	MaxRefundsPerOrder = 50
	// RefundSpacing is the least time between two refunds of one order, times
	// Options.TimeScale (real time).
	RefundSpacing = time.Minute
	// RefundWindow: an order paid longer ago (Options.Now) cannot be refunded.
	RefundWindow = 365 * 24 * time.Hour
)

// Refund is a refund ledger entry: a refund the sandbox accepted, with its outcome.
type Refund struct {
	SPMchID       string `json:"sp_mchid"`
	SubMchID      string `json:"sub_mchid"`
	SPAppID       string `json:"sp_appid"`
	SubAppID      string `json:"sub_appid,omitempty"`
	RefundID      string `json:"refund_id"`
	OutRefundNo   string `json:"out_refund_no"`
	OutTradeNo    string `json:"out_trade_no"`
	TransactionID string `json:"transaction_id"`
	Reason        string `json:"reason,omitempty"`
	Source        string `json:"source,omitempty"`
	NotifyURL     string `json:"notify_url,omitempty"`
	// Refund, Total and Currency are amount.refund, the order's total and currency.
	Refund   int64  `json:"refund"`
	Total    int64  `json:"total"`
	Currency string `json:"currency"`
	// PayerRefund is what the payer gets back in PayerCurrency, at the order's
	// ExchangeRate (×10^8); PayerTotal is what the payer paid for the order.
	PayerRefund   int64          `json:"payer_refund"`
	PayerTotal    int64          `json:"payer_total"`
	PayerCurrency string         `json:"payer_currency"`
	ExchangeRate  int64          `json:"exchange_rate"`
	Behavior      RefundBehavior `json:"behavior"`
	Status        RefundStatus   `json:"status"`
	CreateTime    time.Time      `json:"create_time"`
	SuccessTime   time.Time      `json:"success_time,omitzero"`
	// Requests counts the accepted refund requests that named this out_refund_no, the
	// first and the replays (NOT_ENOUGH refusals not included).
	Requests int `json:"requests"`
	// NotEnoughRefusals counts the requests refused with NOT_ENOUGH before it was
	// accepted.
	NotEnoughRefusals int `json:"not_enough_refusals"`
	// Applied counts the times this refund was taken off its order (0 or 1): a
	// reconciliation checks that no out_refund_no refunded twice.
	Applied int `json:"applied"`

	seq uint64
}

// RefundAmount is the amount of a refund query answer and of a REFUND.* resource.
type RefundAmount struct {
	Refund        int64         `json:"refund"`
	Total         int64         `json:"total"`
	Currency      string        `json:"currency"`
	PayerRefund   int64         `json:"payer_refund"`
	PayerTotal    int64         `json:"payer_total"`
	PayerCurrency string        `json:"payer_currency"`
	ExchangeRate  *ExchangeRate `json:"exchange_rate,omitempty"`
}

// RefundCreated is the answer of POST /v3/global/refunds: it means "accepted" and
// carries no status (the outcome comes by query or notification).
type RefundCreated struct {
	ID          string              `json:"id"`
	OutRefundNo string              `json:"out_refund_no"`
	CreateTime  string              `json:"create_time"`
	Amount      RefundCreatedAmount `json:"amount"`
}

// RefundCreatedAmount is the amount of the refund answer.
type RefundCreatedAmount struct {
	Refund        int64         `json:"refund"`
	Currency      string        `json:"currency"`
	PayerRefund   int64         `json:"payer_refund"`
	PayerCurrency string        `json:"payer_currency"`
	ExchangeRate  *ExchangeRate `json:"exchange_rate,omitempty"`
}

// RefundQueried is the answer of the refund queries.
type RefundQueried struct {
	ID            string       `json:"id"`
	OutRefundNo   string       `json:"out_refund_no"`
	TransactionID string       `json:"transaction_id"`
	OutTradeNo    string       `json:"out_trade_no"`
	Channel       string       `json:"channel"`
	RecvAccount   string       `json:"recv_account"`
	FundSource    string       `json:"fund_source"`
	SuccessTime   string       `json:"success_time,omitempty"`
	CreateTime    string       `json:"create_time"`
	Status        RefundStatus `json:"status"`
	Amount        RefundAmount `json:"amount"`
}

// RefundResource is the plaintext of REFUND.SUCCESS, REFUND.CLOSED and REFUND.ABNORMAL.
// Alter one (Refund.Resource) and pass it to BuildNotification to forge notifications.
type RefundResource struct {
	SPMchID             string       `json:"sp_mchid"`
	SubMchID            string       `json:"sub_mchid"`
	TransactionID       string       `json:"transaction_id"`
	OutTradeNo          string       `json:"out_trade_no"`
	RefundID            string       `json:"refund_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	RefundStatus        RefundStatus `json:"refund_status"`
	SuccessTime         string       `json:"success_time,omitempty"`
	UserReceivedAccount string       `json:"user_received_account"`
	Amount              RefundAmount `json:"amount"`
}

func (r Refund) rate() *ExchangeRate {
	return &ExchangeRate{Type: ExchangeRateSettlement, Rate: r.ExchangeRate}
}

func (r Refund) amount() RefundAmount {
	return RefundAmount{Refund: r.Refund, Total: r.Total, Currency: r.Currency, PayerRefund: r.PayerRefund,
		PayerTotal: r.PayerTotal, PayerCurrency: r.PayerCurrency, ExchangeRate: r.rate()}
}

// Created returns the refund answer.
func (r Refund) Created() RefundCreated {
	return RefundCreated{ID: r.RefundID, OutRefundNo: r.OutRefundNo, CreateTime: wechatTime(r.CreateTime),
		Amount: RefundCreatedAmount{Refund: r.Refund, Currency: r.Currency, PayerRefund: r.PayerRefund,
			PayerCurrency: r.PayerCurrency, ExchangeRate: r.rate()}}
}

// Queried returns the refund query answer.
func (r Refund) Queried() RefundQueried {
	return RefundQueried{ID: r.RefundID, OutRefundNo: r.OutRefundNo, TransactionID: r.TransactionID,
		OutTradeNo: r.OutTradeNo, Channel: RefundChannelOriginal, RecvAccount: RefundRecvAccount,
		FundSource: RefundFundsUnsettled, SuccessTime: wechatTime(r.SuccessTime), CreateTime: wechatTime(r.CreateTime),
		Status: r.Status, Amount: r.amount()}
}

// Resource returns the REFUND.* plaintext of the refund as it stands.
func (r Refund) Resource() RefundResource {
	return RefundResource{SPMchID: r.SPMchID, SubMchID: r.SubMchID, TransactionID: r.TransactionID,
		OutTradeNo: r.OutTradeNo, RefundID: r.RefundID, OutRefundNo: r.OutRefundNo, RefundStatus: r.Status,
		SuccessTime: wechatTime(r.SuccessTime), UserReceivedAccount: RefundRecvAccount, Amount: r.amount()}
}

// refundEvent is the notification a refund status sends ("" for none).
func refundEvent(status RefundStatus) string {
	switch status {
	case RefundSuccess:
		return EventRefundSuccess
	case RefundClosed:
		return EventRefundClosed
	case RefundAbnormal:
		return EventRefundAbnormal
	}
	return ""
}

// refundKey identifies a refund: out_refund_no is unique per sub-merchant.
type refundKey struct {
	subMchID    string
	outRefundNo string
}

// refundRequest is the body of POST /v3/global/refunds.
type refundRequest struct {
	SPMchID       string `json:"sp_mchid"`
	SubMchID      string `json:"sub_mchid"`
	SPAppID       string `json:"sp_appid"`
	SubAppID      string `json:"sub_appid"`
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	Source        string `json:"source"`
	Amount        *struct {
		Refund   *int64 `json:"refund"`
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	NotifyURL string `json:"notify_url"`
}

// refundParams are what a repeated out_refund_no must repeat: the order (as named), the
// amounts, and the other parameters.
type refundParams struct {
	spAppID, subAppID, reason, source, notifyURL string
	refund, total                                int64
	currency                                     string
}

func (r *Refund) params() refundParams {
	return refundParams{r.SPAppID, r.SubAppID, r.Reason, r.Source, r.NotifyURL, r.Refund, r.Total, r.Currency}
}

// checkRefund validates the body in the order of the API's field table and returns the
// refund it asks for (order fields as named by the request).
func checkRefund(req *refundRequest) (*Refund, *apiError) {
	c := fieldChecker{location: locBody}
	c.str("sp_mchid", req.SPMchID, 32, true)
	c.str("sub_mchid", req.SubMchID, 32, true)
	c.str("sp_appid", req.SPAppID, 32, true)
	c.str("sub_appid", req.SubAppID, 32, false)
	c.str("transaction_id", req.TransactionID, 32, false)
	if req.TransactionID == "" {
		if c.err == nil && req.OutTradeNo == "" {
			c.fail("out_trade_no", nil, "transaction_id or out_trade_no is required")
		}
		c.merchantNo("out_trade_no", req.OutTradeNo, 32)
	} else {
		c.str("out_trade_no", req.OutTradeNo, 32, false)
	}
	c.merchantNo("out_refund_no", req.OutRefundNo, 64)
	c.str("reason", req.Reason, 80, false)
	c.str("source", req.Source, 30, false)
	r := &Refund{SPMchID: req.SPMchID, SubMchID: req.SubMchID, SPAppID: req.SPAppID, SubAppID: req.SubAppID,
		TransactionID: req.TransactionID, OutTradeNo: req.OutTradeNo, OutRefundNo: req.OutRefundNo,
		Reason: req.Reason, Source: req.Source, NotifyURL: req.NotifyURL}
	switch a := req.Amount; {
	case c.err != nil:
	case a == nil:
		c.fail("amount", nil, "is required")
	case a.Refund == nil:
		c.fail("amount/refund", nil, "is required")
	case *a.Refund <= 0:
		c.fail("amount/refund", *a.Refund, "must be a positive integer (minor units of the currency)")
	case a.Total == nil:
		c.fail("amount/total", nil, "is required")
	case *a.Total <= 0:
		c.fail("amount/total", *a.Total, "must be a positive integer (minor units of the currency)")
	case c.str("amount/currency", a.Currency, 16, true) && !globalCurrencies[a.Currency]:
		c.fail("amount/currency", a.Currency, "must be an ISO 4217 currency supported by WeChat Pay Global")
	default:
		r.Refund, r.Total, r.Currency = *a.Refund, *a.Total, a.Currency
	}
	c.notifyURL("notify_url", req.NotifyURL, false)
	if c.err != nil {
		return nil, c.err
	}
	return r, nil
}

// refundOutcome is the outcome of a refund request.
type refundOutcome struct {
	refund Refund
	fresh  bool // this request created the refund
	err    *apiError
}

// findOrderLocked returns the order a refund request names: by transaction_id (which
// must be the sub-merchant's, and agree with out_trade_no if both are given), else by
// out_trade_no.
func (s *Sandbox) findOrderLocked(req *Refund) *Order {
	if req.TransactionID == "" {
		return s.orders[orderKey{req.SubMchID, req.OutTradeNo}]
	}
	o := s.byTransaction[req.TransactionID]
	if o == nil || o.SubMchID != req.SubMchID || (req.OutTradeNo != "" && req.OutTradeNo != o.OutTradeNo) {
		return nil
	}
	return o
}

// createRefund applies a validated refund request atomically: concurrent identical
// requests refund once.
func (s *Sandbox) createRefund(req *Refund) refundOutcome {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	key := refundKey{req.SubMchID, req.OutRefundNo}
	if r := s.refunds[key]; r != nil {
		sameOrder := (req.TransactionID == "" || req.TransactionID == r.TransactionID) &&
			(req.OutTradeNo == "" || req.OutTradeNo == r.OutTradeNo)
		if !sameOrder || r.params() != req.params() {
			return refundOutcome{err: orderError(http.StatusBadRequest, CodeOutRefundNoUsed,
				"out_refund_no was already used with other parameters")}
		}
		r.Requests++
		return refundOutcome{refund: *r} // a replay: the refund as it stands
	}
	o := s.findOrderLocked(req)
	switch {
	case o == nil:
		return refundOutcome{err: orderError(http.StatusNotFound, CodeResourceNotExists, "the order does not exist")}
	case o.TradeState != TradeSuccess && o.TradeState != TradeRefund:
		return refundOutcome{err: invalidRequest("the order is not paid; only a paid order can be refunded")}
	case now.Sub(o.SuccessTime) > RefundWindow:
		return refundOutcome{err: invalidRequest("the order was paid more than a year ago and cannot be refunded")}
	case req.Total != o.Total:
		return refundOutcome{err: paramError("/amount/total", locBody, req.Total, "must be the order's total")}
	case req.Currency != o.Currency:
		return refundOutcome{err: paramError("/amount/currency", locBody, req.Currency, "must be the order's currency")}
	case len(s.refundsOf[o]) >= MaxRefundsPerOrder:
		return refundOutcome{err: invalidRequest(fmt.Sprintf("the order already has %d refunds, the most allowed", MaxRefundsPerOrder))}
	case req.Refund > o.Total-refundedLocked(s.refundsOf[o]): // no overflow: both sides ≤ Total
		return refundOutcome{err: invalidRequest("refund amount exceeds the refundable amount of the order")}
	case !o.lastRefund.IsZero() && time.Since(o.lastRefund) < s.scaled(RefundSpacing):
		return refundOutcome{err: orderError(http.StatusTooManyRequests, CodeFrequencyLimited,
			"refunds of one order must be at least one minute apart; retry later with the same out_refund_no")}
	}
	payer := s.payerLocked(o.OpenID)
	behavior := payer.refundBehavior()
	if behavior == RefundBehaviorNotEnough && s.refundRefusals[key] < payer.refundNotEnoughAttempts() {
		s.refundRefusals[key]++
		return refundOutcome{err: &apiError{status: http.StatusForbidden, Code: CodeNotEnough,
			Message: "insufficient funds to refund; retry later with the same out_refund_no"}}
	}
	r := req
	r.SPMchID, r.TransactionID, r.OutTradeNo = s.creds.MchID, o.TransactionID, o.OutTradeNo
	r.PayerTotal, r.PayerCurrency, r.ExchangeRate = o.PayerTotal, o.PayerCurrency, o.ExchangeRate
	r.PayerRefund = payerRefundLocked(o, s.refundsOf[o], r.Refund)
	r.Behavior, r.CreateTime, r.Requests, r.Applied = behavior, now, 1, 1
	r.NotEnoughRefusals = s.refundRefusals[key]
	for {
		r.RefundID = newRefundID(now)
		if _, taken := s.byRefundID[r.RefundID]; !taken {
			break
		}
	}
	s.refundSeq++
	r.seq = s.refundSeq
	s.refunds[key], s.byRefundID[r.RefundID] = r, r
	s.refundsOf[o] = append(s.refundsOf[o], r)
	s.refundLedger = append(s.refundLedger, r)
	o.TradeState, o.TradeStateDesc = TradeRefund, tradeStateDesc[TradeRefund]
	o.lastRefund = time.Now()
	switch behavior {
	case RefundBehaviorProcessing:
		r.Status = RefundProcessing
		s.settleRefundLaterLocked(key, payer.refundSettleAfter())
	case RefundBehaviorAbnormal:
		r.Status = RefundAbnormal
	case RefundBehaviorClosed:
		r.Status = RefundClosed
	default: // SUCCEED, and NOT_ENOUGH once its refusals are over
		s.refundSucceededLocked(r, payer, now)
	}
	return refundOutcome{refund: *r, fresh: true}
}

// refundedLocked is what the refunds of one order take off it: all but CLOSED ones.
func refundedLocked(refunds []*Refund) int64 {
	var sum int64
	for _, r := range refunds {
		if r.Status != RefundClosed {
			sum += r.Refund
		}
	}
	return sum
}

// payerRefundLocked converts a refund of o to the payer currency at the order's exchange
// rate, rounded like payer_total (ConvertAmount). The payer never gets back more than
// payer_total: a refund is capped at what the other refunds leave, and the refund that
// completes the order's total returns exactly the rest.
func payerRefundLocked(o *Order, others []*Refund, refund int64) int64 {
	var back int64
	for _, r := range others {
		if r.Status != RefundClosed {
			back += r.PayerRefund
		}
	}
	left := max(o.PayerTotal-back, 0)
	if refundedLocked(others)+refund == o.Total {
		return left
	}
	return min(ConvertAmount(refund, o.ExchangeRate), left)
}

// refundSucceededLocked settles r: SUCCESS, the payer's balance restored.
func (s *Sandbox) refundSucceededLocked(r *Refund, payer *PayerConfig, now time.Time) {
	r.Status, r.SuccessTime = RefundSuccess, now
	if payer.Balance != nil {
		*payer.Balance += r.PayerRefund
	}
}

// settleRefundLaterLocked moves a PROCESSING refund to SUCCESS after d (real time) and
// notifies, unless the sandbox closed first. The pending settlement counts for WaitIdle.
func (s *Sandbox) settleRefundLaterLocked(key refundKey, d time.Duration) {
	s.noteRefundSettleLocked(key, d)
	s.laterLocked(d, func() {
		now := s.now()
		s.mu.Lock()
		r := s.refunds[key]
		if r == nil || r.Status != RefundProcessing {
			s.mu.Unlock()
			return
		}
		o := s.byTransaction[r.TransactionID]
		s.refundSucceededLocked(r, s.payerLocked(o.OpenID), now)
		out := *r
		s.mu.Unlock()
		s.notifyRefund(out)
	})
}

// notifyRefund sends the REFUND.* notification of r's status, if it has one.
func (s *Sandbox) notifyRefund(r Refund) string {
	ev := refundEvent(r.Status)
	if ev == "" {
		return ""
	}
	return s.notify(r.NotifyURL, ev, r.Resource(), slog.String("out_refund_no", r.OutRefundNo),
		slog.String("refund_id", r.RefundID))
}

// handleRefund serves POST /v3/global/refunds.
func (s *Sandbox) handleRefund(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // already buffered by routeAPI
	var req refundRequest
	if e := decodeBody(body, &req); e != nil {
		writeAPIError(w, e)
		return
	}
	refund, e := checkRefund(&req)
	if e == nil {
		e = s.authorizeProvider(req.SPMchID)
	}
	if e == nil {
		e = s.authorize(req.SubMchID, req.SPAppID)
	}
	var out refundOutcome
	if e == nil {
		out = s.createRefund(refund)
		e = out.err
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	if out.fresh {
		s.notifyRefund(out.refund)
	}
	writeJSON(w, http.StatusOK, out.refund.Created())
}

// authorizeProvider checks that sp_mchid is the merchant the request is signed by.
func (s *Sandbox) authorizeProvider(spMchID string) *apiError {
	if spMchID != s.creds.MchID {
		return noAuth(fmt.Sprintf("sp_mchid %s is not the merchant that signed the request (%s)", spMchID, s.creds.MchID))
	}
	return nil
}

// checkRefundQuery validates the path parameter and the sp_mchid and sub_mchid query
// parameters of both refund queries.
func (s *Sandbox) checkRefundQuery(pathField, pathValue string, r *http.Request) (string, *apiError) {
	path := fieldChecker{location: locPath}
	path.str(pathField, pathValue, 64, true)
	query := fieldChecker{location: locQuery}
	spMchID, subMchID := r.URL.Query().Get("sp_mchid"), r.URL.Query().Get("sub_mchid")
	query.str("sp_mchid", spMchID, 32, true)
	query.str("sub_mchid", subMchID, 32, true)
	if e := firstError(path.err, query.err); e != nil {
		return "", e
	}
	if e := s.authorizeProvider(spMchID); e != nil {
		return "", e
	}
	return subMchID, s.authorizeSubMchID(subMchID)
}

// handleQueryRefundByID serves GET /v3/global/refunds/id/{refund_id}.
func (s *Sandbox) handleQueryRefundByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("refund_id")
	subMchID, e := s.checkRefundQuery("refund_id", id, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	found, ok := s.byRefundID[id]
	var out Refund
	if ok {
		out = *found
	}
	s.mu.Unlock()
	writeRefund(w, out, ok && out.SubMchID == subMchID)
}

// handleQueryRefundByNo serves GET /v3/global/refunds/out-refund-no/{out_refund_no}.
func (s *Sandbox) handleQueryRefundByNo(w http.ResponseWriter, r *http.Request) {
	no := r.PathValue("out_refund_no")
	subMchID, e := s.checkRefundQuery("out_refund_no", no, r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	found, ok := s.refunds[refundKey{subMchID, no}]
	var out Refund
	if ok {
		out = *found
	}
	s.mu.Unlock()
	writeRefund(w, out, ok)
}

func writeRefund(w http.ResponseWriter, r Refund, found bool) {
	if !found {
		writeAPIError(w, orderError(http.StatusNotFound, CodeResourceNotExists, "the refund does not exist"))
		return
	}
	writeJSON(w, http.StatusOK, r.Queried())
}

// ErrRefundNotFound is the control API's error for an unknown out_refund_no.
var ErrRefundNotFound = errors.New("sandbox: refund not found")

// ErrRefundNotAbnormal is ResolveRefund's error for a refund that is not ABNORMAL.
var ErrRefundNotAbnormal = errors.New("sandbox: the refund is not ABNORMAL")

// ErrInvalidResolution is ResolveRefund's error for a status other than SUCCESS and
// CLOSED.
var ErrInvalidResolution = errors.New("sandbox: an ABNORMAL refund is resolved to SUCCESS or CLOSED")

// Refunds returns the refund ledger, oldest refund first (copies).
func (s *Sandbox) Refunds() []Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Refund, len(s.refundLedger))
	for i, r := range s.refundLedger {
		out[i] = *r
	}
	return out
}

// Refund returns the refund out_refund_no of subMchID ("": the newest refund with that
// number of any sub-merchant).
func (s *Sandbox) Refund(subMchID, outRefundNo string) (Refund, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *Refund
	for _, r := range s.refundLedger {
		if r.OutRefundNo == outRefundNo && (subMchID == "" || r.SubMchID == subMchID) {
			found = r
		}
	}
	if found == nil {
		return Refund{}, false
	}
	return *found, true
}

// ResolveRefund ends an ABNORMAL refund as the merchant's staff would in the merchant
// platform: SUCCESS (the money reached the payer another way) or CLOSED (it went back
// to the merchant), and notifies REFUND.SUCCESS or REFUND.CLOSED.
//
// Errors: ErrRefundNotFound, ErrRefundNotAbnormal, ErrInvalidResolution.
func (s *Sandbox) ResolveRefund(subMchID, outRefundNo string, status RefundStatus) (Refund, error) {
	if status != RefundSuccess && status != RefundClosed {
		return Refund{}, fmt.Errorf("%w, not %q", ErrInvalidResolution, status)
	}
	now := s.now()
	s.mu.Lock()
	var r *Refund
	for _, each := range s.refundLedger {
		if each.OutRefundNo == outRefundNo && (subMchID == "" || each.SubMchID == subMchID) {
			r = each
		}
	}
	switch {
	case r == nil:
		s.mu.Unlock()
		return Refund{}, ErrRefundNotFound
	case r.Status != RefundAbnormal:
		s.mu.Unlock()
		return Refund{}, fmt.Errorf("%w: it is %s", ErrRefundNotAbnormal, r.Status)
	}
	if status == RefundSuccess {
		o := s.byTransaction[r.TransactionID]
		s.refundSucceededLocked(r, s.payerLocked(o.OpenID), now)
	} else {
		r.Status = RefundClosed
	}
	out := *r
	s.mu.Unlock()
	s.notifyRefund(out)
	return out, nil
}

// RefundList is the answer of GET /v3/global/refunds: one page of an order's refunds,
// oldest first.
type RefundList struct {
	SPMchID         string          `json:"sp_mchid"`
	SubMchID        string          `json:"sub_mchid"`
	TransactionID   string          `json:"transaction_id"`
	OutTradeNo      string          `json:"out_trade_no"`
	TotalNum        int             `json:"total_num"`
	CurrentTotalNum int             `json:"current_total_num"`
	Offset          int             `json:"offset"`
	Count           int             `json:"count"`
	Data            []RefundQueried `json:"data"`
}

// Paging of the refund list.
const (
	DefaultRefundListCount = 10
	MaxRefundListCount     = 20
)

// handleListRefunds serves GET /v3/global/refunds?transaction_id=|out_trade_no=
// &sp_mchid=&sub_mchid=[&offset=&count=].
func (s *Sandbox) handleListRefunds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := fieldChecker{location: locQuery}
	txID, no := q.Get("transaction_id"), q.Get("out_trade_no")
	c.str("transaction_id", txID, 32, false)
	if txID == "" && c.err == nil && no == "" {
		c.fail("out_trade_no", nil, "transaction_id or out_trade_no is required")
	}
	c.str("out_trade_no", no, 32, false)
	c.str("sp_mchid", q.Get("sp_mchid"), 32, true)
	c.str("sub_mchid", q.Get("sub_mchid"), 32, true)
	offset := c.nonNegative("offset", q.Get("offset"), 0)
	count := c.nonNegative("count", q.Get("count"), DefaultRefundListCount)
	if c.err == nil && (count < 1 || count > MaxRefundListCount) {
		c.fail("count", count, fmt.Sprintf("must be 1 to %d", MaxRefundListCount))
	}
	e := c.err
	if e == nil {
		e = s.authorizeProvider(q.Get("sp_mchid"))
	}
	subMchID := q.Get("sub_mchid")
	if e == nil {
		e = s.authorizeSubMchID(subMchID)
	}
	if e != nil {
		writeAPIError(w, e)
		return
	}
	s.mu.Lock()
	o := s.findOrderLocked(&Refund{SubMchID: subMchID, TransactionID: txID, OutTradeNo: no})
	list := RefundList{SPMchID: s.creds.MchID, SubMchID: subMchID, Offset: offset, Count: count, Data: []RefundQueried{}}
	if o != nil {
		list.TransactionID, list.OutTradeNo = o.TransactionID, o.OutTradeNo
		refunds := s.refundsOf[o]
		list.TotalNum = len(refunds)
		for _, each := range refunds[min(offset, len(refunds)):min(offset+count, len(refunds))] {
			list.Data = append(list.Data, each.Queried())
		}
		list.CurrentTotalNum = len(list.Data)
	}
	s.mu.Unlock()
	if o == nil {
		writeAPIError(w, orderError(http.StatusNotFound, CodeResourceNotExists, "the order does not exist"))
		return
	}
	writeJSON(w, http.StatusOK, list)
}
