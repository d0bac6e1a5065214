package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

func (in *RefundInput) validate() error {
	var v violations
	v.refundCode("out_refund_no", in.OutRefundNo, 64, true)
	switch {
	case in.OutTradeNo != "" && in.TransactionID != "":
		v.add("out_trade_no", "give either out_trade_no or transaction_id, not both")
	case in.TransactionID != "":
		v.token("transaction_id", in.TransactionID, 32, true)
	case in.OutTradeNo != "":
		v.code("out_trade_no", in.OutTradeNo, 32, true)
	default:
		v.add("out_trade_no", "is required (or transaction_id)")
	}
	if in.Amount.Total <= 0 {
		v.add("amount.refund", "is required and must be positive (minor units)")
	}
	if !currencies[in.Amount.Currency] {
		v.add("amount.currency", "must be a WeChat Pay Global ISO 4217 code such as HKD")
	}
	v.text("reason", in.Reason, 80, true)
	return v.err()
}

// same reports whether r was created by the same parameters: the same
// charge c (named by out_trade_no or transaction_id), amount and reason.
func (in *RefundInput) same(r Refund, c Charge) bool {
	return r.OutTradeNo == c.OutTradeNo && r.Amount == in.Amount && r.Reason == in.Reason
}

// request is the refund call for r: built from the refund alone, so that
// every send of one refund is the same request.
func (r *Refund) request() RefundRequest {
	return RefundRequest{
		Merchant: r.Merchant, TransactionID: r.TransactionID, OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo,
		Reason: r.Reason, Refund: r.Amount.Total, Total: r.ChargeTotal, Currency: r.Amount.Currency, NotifyURL: r.NotifyURL,
	}
}

// refundable checks, under the charge's lock, that c may be refunded
// amount now, given its recorded refunds: WeChat is not asked otherwise.
func refundable(c Charge, amount Money, refunds []Refund, now time.Time) error {
	if c.State != ChargeSucceeded {
		return wrap(ErrChargeNotRefundable, fmt.Sprintf("charge %s is %s; only a SUCCEEDED charge can be refunded", c.OutTradeNo, c.State), nil)
	}
	if amount.Currency != c.Amount.Currency {
		return invalid([]FieldViolation{{Field: "amount.currency", Description: "must be the charge's currency, " + c.Amount.Currency}})
	}
	paid := c.SuccessTime
	if paid.IsZero() {
		paid = c.CreateTime
	}
	if now.Sub(paid) > RefundWindow {
		return wrap(ErrChargeTooOldToRefund, fmt.Sprintf("charge %s was paid more than a year ago", c.OutTradeNo), nil)
	}
	// A FAILED refund was refused by WeChat: it is no refund there, and
	// does not count against the 50.
	n, sum := 0, amount.Total
	for _, r := range refunds {
		if r.State != RefundFailed {
			n++
		}
		if r.State.Counts() {
			sum += r.Amount.Total
		}
	}
	if n >= MaxRefundsPerCharge {
		return wrap(ErrRefundLimitReached, fmt.Sprintf("charge %s has %d refunds already", c.OutTradeNo, n), nil)
	}
	if sum > c.Amount.Total {
		return wrap(ErrRefundExceedsCharge, fmt.Sprintf("the refunds of charge %s would total %d %s; it is %d",
			c.OutTradeNo, sum, c.Amount.Currency, c.Amount.Total), nil)
	}
	return nil
}

// sendSlot is the earliest time r may be sent, given the other refunds of
// its charge: spacing after the last send of any other, and after
// the planned first send of any other waiting ahead of it (created
// before it). The zero time when nothing holds it back.
func sendSlot(refunds []Refund, r Refund, spacing time.Duration) time.Time {
	var at time.Time
	later := func(t time.Time) {
		if t = t.Add(spacing); t.After(at) {
			at = t
		}
	}
	for _, o := range refunds {
		if o.OutRefundNo == r.OutRefundNo {
			continue
		}
		if !o.LastSendTime.IsZero() {
			later(o.LastSendTime)
		}
		ahead := o.CreateTime.Before(r.CreateTime) || o.CreateTime.Equal(r.CreateTime) && o.OutRefundNo < r.OutRefundNo
		if o.State == RefundPending && o.Attempts == 0 && ahead && !o.NextCheckTime.IsZero() {
			later(o.NextCheckTime)
		}
	}
	return at
}

// CreateRefund refunds part or all of a SUCCEEDED charge, idempotently on
// out_refund_no: the same number with the same parameters answers the
// same refund (as recorded: WeChat is not called again; the reconciler
// moves a PENDING one on); other parameters are ErrOutRefundNoReused.
//
// The rules are checked under the charge's lock before WeChat is called:
// a SUCCEEDED charge (ErrChargeNotRefundable), in its currency, paid less
// than a year ago (ErrChargeTooOldToRefund), at most MaxRefundsPerCharge
// refunds (ErrRefundLimitReached), and the refunds that count (not FAILED
// or CLOSED) within its total (ErrRefundExceedsCharge). The refund is
// recorded PENDING before WeChat is called. A refund asked for less than
// ReconcileConfig.RefundSpacing after the previous send of one of the charge's refunds is
// not sent: it stays PENDING, and the reconciler sends it when its time
// comes. A lost answer (timeout, 5xx) or a refusal to be retried
// (NOT_ENOUGH, BIZERR_NEED_RETRY, SYSTEM_ERROR, FREQUENCY_LIMITED) leaves
// it PENDING, returned without an error. A final refusal is a FAILED
// refund with WeChat's code, also without an error.
//
// The caller acts for its sub-merchants only: another sub-merchant's
// charge is ErrChargeNotFound, exactly as a missing one, and an
// out_refund_no of another sub-merchant's refund is ErrOutRefundNoReused,
// once the charge is the caller's.
func (s *Service) CreateRefund(ctx context.Context, in RefundInput) (Refund, error) {
	if err := in.validate(); err != nil {
		return Refund{}, err
	}
	fail := func(err error) (Refund, error) {
		return Refund{}, fmt.Errorf("refund %s: %w", in.OutRefundNo, err)
	}
	// The lock is the charge's, by out_trade_no: a transaction_id is
	// resolved first.
	found, err := ChargeKey{OutTradeNo: in.OutTradeNo, TransactionID: in.TransactionID}.find(ctx, s.store)
	if err != nil {
		return fail(err)
	}
	unlock, err := s.lock(ctx, "charge/"+found.OutTradeNo)
	if err != nil {
		return fail(err)
	}
	defer unlock()

	var r Refund
	var send bool
	caller := CallerFrom(ctx)
	err = s.inTx(ctx, func(tx Tx) error {
		r, send = Refund{}, false // set afresh on each run
		c, err := tx.ChargeByOutTradeNo(ctx, found.OutTradeNo)
		if err != nil {
			return notFoundAs(err, ErrChargeNotFound)
		}
		old, err := tx.RefundByOutRefundNo(ctx, in.OutRefundNo)
		switch {
		case err == nil && !caller.Sees(old.SubMchID):
			// out_refund_no is unique across sub-merchants: that it is
			// taken is all the caller learns, whatever the parameters.
			return ErrOutRefundNoReused
		case err == nil && !in.same(old, c):
			return ErrOutRefundNoReused
		case err == nil:
			r = old
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		refunds, err := tx.RefundsOfCharge(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if err := refundable(c, in.Amount, refunds, now); err != nil {
			return err
		}
		r = Refund{
			OutRefundNo: in.OutRefundNo, OutTradeNo: c.OutTradeNo, TransactionID: c.TransactionID, Merchant: c.Merchant,
			Reason: in.Reason, Amount: in.Amount, ChargeTotal: c.Amount.Total, NotifyURL: s.cfg.NotifyURL,
			State: RefundPending, CreateTime: now, UpdateTime: now,
		}
		if slot := sendSlot(refunds, r, s.cfg.Reconcile.RefundSpacing); slot.After(now) {
			r.NextCheckTime = slot // sent by the reconciler
		} else {
			send = true
			r.Attempts, r.LastSendTime, r.NextCheckTime = 1, now, now.Add(s.cfg.Reconcile.FirstCheck)
		}
		if err := tx.CreateRefund(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) {
				// Recorded meanwhile for another charge (whose lock is not
				// ours): the number is taken.
				return ErrOutRefundNoReused
			}
			return err
		}
		return s.audit(ctx, tx, "CreateRefund", "refunds/"+r.OutRefundNo)
	})
	if err != nil {
		return fail(err)
	}
	if !send {
		if r.Attempts == 0 && r.State == RefundPending {
			s.log.InfoContext(ctx, "refund waits for the spacing of its charge's refunds", "out_refund_no", r.OutRefundNo,
				"out_trade_no", r.OutTradeNo, "send_time", r.NextCheckTime)
		}
		return r, nil
	}
	return s.sendRefund(ctx, r, false)
}

// sendRefund sends r, whose send is recorded (Attempts, LastSendTime), and
// records the outcome. resend says an earlier send's outcome was not
// WeChat's final word. The caller holds the charge's lock.
func (s *Service) sendRefund(ctx context.Context, r Refund, resend bool) (Refund, error) {
	rr, err := s.wechat.CreateRefund(ctx, r.request())
	if err != nil {
		return s.refundFailed(ctx, r, resend, err)
	}
	r, err = s.recordRefund(ctx, r.OutRefundNo, rr)
	if err != nil {
		return Refund{}, fmt.Errorf("refund %s: record answer: %w", r.OutRefundNo, err)
	}
	s.log.InfoContext(ctx, "refund answered", "out_refund_no", r.OutRefundNo, "state", string(r.State),
		"refund_id", r.RefundID)
	return r, nil
}

// refundFailed handles a refund call that returned an error. A lost answer
// or a refusal to be retried leaves the refund PENDING (the reconciler
// queries it, then resends it). A refusal that answers a resend leads to a
// query, never straight to FAILED: it may be about the earlier send
// (OUT_REFUND_NO_USED). Only a refusal WeChat confirms it holds no refund
// under the number for, or a first send's, makes it FAILED.
func (s *Service) refundFailed(ctx context.Context, r Refund, resend bool, callErr error) (Refund, error) {
	derr := fromRemote("refund "+r.OutRefundNo, callErr)
	var re *RemoteError
	remote := errors.As(callErr, &re)
	switch {
	case remote && refundRetryable(re), !remote:
		code := ErrWeChatUnavailable.Reason
		if remote && re.Code != "" {
			code = re.Code
		}
		s.log.WarnContext(ctx, "refund outcome unknown or to be retried", "out_refund_no", r.OutRefundNo, "code", code)
		return s.noteRefundError(ctx, r.OutRefundNo, code)
	case re.HTTPStatus == 401 || re.Code == "SIGN_ERROR":
		// Not about this refund: it stays PENDING (the reconciler tries
		// again) and the error is the answer.
		code := re.Code
		if code == "" {
			code = ErrWeChatAuth.Reason
		}
		if _, err := s.noteRefundError(ctx, r.OutRefundNo, code); err != nil {
			return Refund{}, errors.Join(derr, err)
		}
		return Refund{}, derr
	case resend:
		s.log.WarnContext(ctx, "a resent refund was refused; asking WeChat what became of it",
			"out_refund_no", r.OutRefundNo, "code", re.Code)
		cur, found, err := s.queryRefund(ctx, r)
		switch {
		case err != nil:
			s.log.WarnContext(ctx, "refund outcome unknown", "out_refund_no", r.OutRefundNo, "error", err.Error())
			return s.noteRefundError(ctx, r.OutRefundNo, re.Code)
		case found:
			return cur, nil
		case re.Code == "OUT_REFUND_NO_USED":
			// WeChat says the number is used and knows no refund under
			// it: not a refusal to act on. PENDING, and asked again.
			s.log.WarnContext(ctx, "OUT_REFUND_NO_USED for a refund WeChat does not show; left PENDING", "out_refund_no", r.OutRefundNo)
			return s.noteRefundError(ctx, r.OutRefundNo, re.Code)
		}
		// WeChat holds no refund under the number: the refusal is final.
	}
	err := s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.RefundByOutRefundNo(ctx, r.OutRefundNo)
		if err != nil {
			return err
		}
		r = cur
		prev := r.State
		if !r.refuse(re.Code, re.Message) {
			return nil
		}
		return s.saveRefund(ctx, tx, &r, prev)
	})
	if err != nil {
		return Refund{}, fmt.Errorf("refund %s: record refusal: %w", r.OutRefundNo, err)
	}
	s.log.InfoContext(ctx, "refund refused", "out_refund_no", r.OutRefundNo, "code", re.Code)
	return r, nil
}

// noteRefundError records code as the last error of a PENDING refund and
// returns the refund as recorded.
func (s *Service) noteRefundError(ctx context.Context, no, code string) (Refund, error) {
	var r Refund
	err := s.inTx(ctx, func(tx Tx) error {
		var err error
		if r, err = tx.RefundByOutRefundNo(ctx, no); err != nil || r.State != RefundPending || r.LastError == code {
			return err
		}
		r.LastError, r.UpdateTime = code, s.clock.Now()
		return tx.UpdateRefund(ctx, r)
	})
	if err != nil {
		return Refund{}, fmt.Errorf("refund %s: %w", no, err)
	}
	return r, nil
}
