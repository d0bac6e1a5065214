package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

func (k RefundKey) validate() error {
	var v violations
	switch {
	case k.OutRefundNo != "" && k.RefundID != "":
		v.add("out_refund_no", "give either out_refund_no or refund_id, not both")
	case k.RefundID != "":
		v.token("refund_id", k.RefundID, 64, true)
	default:
		v.refundCode("out_refund_no", k.OutRefundNo, 64, true)
	}
	return v.err()
}

func (k RefundKey) String() string {
	if k.RefundID != "" {
		return "refund id " + k.RefundID
	}
	return "refund " + k.OutRefundNo
}

// find reads the refund k names from r, as the caller of ctx may see it:
// another sub-merchant's refund is ErrRefundNotFound, exactly as a
// missing one (see Caller.Sees).
func (k RefundKey) find(ctx context.Context, r RefundReader) (Refund, error) {
	var rf Refund
	var err error
	if k.RefundID != "" {
		rf, err = r.RefundByRefundID(ctx, k.RefundID)
	} else {
		rf, err = r.RefundByOutRefundNo(ctx, k.OutRefundNo)
	}
	if err == nil && !CallerFrom(ctx).Sees(rf.SubMchID) {
		err = ErrNotFound
	}
	if err != nil {
		return Refund{}, notFoundAs(err, ErrRefundNotFound)
	}
	return rf, nil
}

// GetRefund answers from the local record; with refresh it first asks
// WeChat (see LookupRefund).
func (s *Service) GetRefund(ctx context.Context, k RefundKey, refresh bool) (Refund, error) {
	r, _, err := s.LookupRefund(ctx, k, refresh)
	return r, err
}

// LookupRefund answers from the local record; with refresh it first asks
// WeChat and records what WeChat says; the Refresh says whether it did.
// Another sub-merchant's refund than the caller's is ErrRefundNotFound,
// and WeChat is not asked.
//
// The refresh is an optional call (WithOptionalCall): when papayd's
// outbound limit refuses it (ErrRateLimited) the local record is the
// answer, with RefreshRateLimited and no error. It takes no lock: a query
// changes nothing at WeChat, and its answer is recorded in one transaction
// through the state machine, like a notification's. A refund WeChat does
// not know (one not sent yet) is answered as recorded.
func (s *Service) LookupRefund(ctx context.Context, k RefundKey, refresh bool) (Refund, Refresh, error) {
	if err := k.validate(); err != nil {
		return Refund{}, RefreshNotAsked, err
	}
	r, err := k.find(ctx, s.store)
	if err != nil {
		return Refund{}, RefreshNotAsked, fmt.Errorf("get %s: %w", k, err)
	}
	if !refresh {
		return r, RefreshNotAsked, nil
	}
	r2, _, err := s.queryRefund(WithOptionalCall(ctx), r)
	switch {
	case errors.Is(err, ErrRateLimited):
		s.log.InfoContext(ctx, "refund not refreshed: outbound limit reached", "out_refund_no", r.OutRefundNo)
		return r, RefreshRateLimited, nil
	case err != nil:
		return Refund{}, RefreshNotAsked, fmt.Errorf("refresh %s: %w", k, err)
	}
	return r2, Refreshed, nil
}

// ListRefunds pages through the local records of the sub-merchants the
// caller sees, newest first; a sub_mchid filter naming another is an
// empty page.
func (s *Service) ListRefunds(ctx context.Context, f RefundFilter) ([]Refund, string, error) {
	var v violations
	v.code("out_trade_no", f.OutTradeNo, 32, false)
	v.token("sub_mchid", f.SubMchID, 32, false)
	if f.State != "" && !validRefundState(f.State) {
		v.add("state", "unknown state %q", f.State)
	}
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	var ok bool
	if f.SubMchIDs, ok = visibleSubMchIDs(ctx, f.SubMchID, f.SubMchIDs); !ok {
		return nil, "", nil
	}
	rs, next, err := s.store.ListRefunds(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("list refunds: %w", err)
	}
	return rs, next, nil
}

func validRefundState(st RefundState) bool {
	for _, x := range RefundStates {
		if x == st {
			return true
		}
	}
	return false
}

// queryRefund asks WeChat about r and records the answer; found is false
// when WeChat does not know the refund (r is then returned as recorded).
func (s *Service) queryRefund(ctx context.Context, r Refund) (_ Refund, found bool, err error) {
	rr, err := s.wechat.QueryRefund(ctx, RefundQuery{SubMchID: r.SubMchID, RefundID: r.RefundID, OutRefundNo: r.OutRefundNo})
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && re.NotFound() {
			r, err = s.store.RefundByOutRefundNo(ctx, r.OutRefundNo)
			return r, false, err
		}
		return Refund{}, false, fromRemote("query refund "+r.OutRefundNo, err)
	}
	r, err = s.recordRefund(ctx, r.OutRefundNo, rr)
	return r, true, err
}

// recordRefund applies what WeChat says about a refund in one transaction
// and returns the refund as recorded.
func (s *Service) recordRefund(ctx context.Context, no string, rr RemoteRefund) (Refund, error) {
	var r Refund
	err := s.inTx(ctx, func(tx Tx) error {
		var err error
		if r, err = tx.RefundByOutRefundNo(ctx, no); err != nil {
			return err
		}
		_, err = s.applyRefund(ctx, tx, &r, rr, "")
		return err
	})
	return r, err
}

// applyRefund records rr on r inside tx: a disagreement on identity or
// money becomes an Anomaly and changes nothing; otherwise the state
// machine decides. It is shared by the refund answer, queries and the
// REFUND.* notifications.
func (s *Service) applyRefund(ctx context.Context, tx Tx, r *Refund, rr RemoteRefund, notificationID string) (Outcome, error) {
	now := s.clock.Now()
	if m := r.mismatch(rr); m != "" {
		s.logCommitted(ctx, tx, slog.LevelError, "ANOMALY: WeChat disagrees with the recorded refund; nothing changed",
			"out_refund_no", r.OutRefundNo, "notification_id", notificationID, "detail", m)
		return OutcomeAnomaly, tx.InsertAnomaly(ctx, Anomaly{Kind: "MISMATCH", OutTradeNo: r.OutTradeNo,
			NotificationID: notificationID, Detail: m, Time: now})
	}
	prev := r.State
	if !r.apply(rr) {
		return OutcomeNoop, nil
	}
	if prev.Final() && prev != r.State {
		detail := fmt.Sprintf("%s refund %s reported %s by WeChat", prev, r.OutRefundNo, rr.Status)
		s.logCommitted(ctx, tx, slog.LevelError, "ANOMALY: a final refund changed state", "out_refund_no", r.OutRefundNo, "detail", detail)
		if err := tx.InsertAnomaly(ctx, Anomaly{Kind: "FINAL_STATE_CHANGED", OutTradeNo: r.OutTradeNo,
			NotificationID: notificationID, Detail: detail, Time: now}); err != nil {
			return "", err
		}
	}
	if err := s.saveRefund(ctx, tx, r, prev); err != nil {
		return "", err
	}
	return OutcomeApplied, nil
}

// saveRefund writes r, changed from state prev, inside tx, and schedules
// the reconciler's next look at a refund that has just changed state:
// never for a final one, soon for PROCESSING, slowly for ABNORMAL. A
// refund that became SUCCEEDED (or, never, stopped being) updates its
// charge's RefundedTotal in the same transaction.
func (s *Service) saveRefund(ctx context.Context, tx Tx, r *Refund, prev RefundState) error {
	now := s.clock.Now()
	r.UpdateTime = now
	if r.State != prev {
		switch {
		case r.State.Final():
			r.NextCheckTime, r.Checks = time.Time{}, 0
		case r.State == RefundAbnormal:
			r.NextCheckTime, r.Checks = now.Add(s.cfg.Reconcile.AbnormalRefundCheck), 0
		case r.State == RefundProcessing:
			r.NextCheckTime, r.Checks = now.Add(s.cfg.Reconcile.FirstCheck), 0
		}
	}
	if err := tx.UpdateRefund(ctx, *r); err != nil {
		return err
	}
	if r.State != prev && (r.State == RefundSucceeded || prev == RefundSucceeded) {
		return s.updateRefundedTotal(ctx, tx, r.OutTradeNo)
	}
	return nil
}

// updateRefundedTotal sets the charge's RefundedTotal to the sum of its
// SUCCEEDED refunds, inside tx.
func (s *Service) updateRefundedTotal(ctx context.Context, tx Tx, outTradeNo string) error {
	c, err := tx.ChargeByOutTradeNo(ctx, outTradeNo)
	if err != nil {
		return fmt.Errorf("charge %s: %w", outTradeNo, err)
	}
	refunds, err := tx.RefundsOfCharge(ctx, outTradeNo)
	if err != nil {
		return fmt.Errorf("refunds of charge %s: %w", outTradeNo, err)
	}
	var sum int64
	for _, r := range refunds {
		if r.State == RefundSucceeded {
			sum += r.Amount.Total
		}
	}
	if c.RefundedTotal == sum {
		return nil
	}
	c.RefundedTotal, c.UpdateTime = sum, s.clock.Now()
	return tx.UpdateCharge(ctx, c)
}
