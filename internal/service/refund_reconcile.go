package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// reconcileRefund moves one due refund on, under its charge's lock:
//
//   - PENDING, never sent (waiting for the spacing): sent, once
//     ReconcileConfig.RefundSpacing has passed since the charge's last refund send.
//   - PENDING, sent (answer lost, or a refusal to be retried): queried
//     first; WeChat's answer is recorded, and when WeChat does not know it,
//     it is sent again with the same out_refund_no (and the same spacing).
//   - PROCESSING: queried on the backoff (ReconcileConfig.Schedule).
//   - ABNORMAL: queried every AbnormalRefundCheck, until WeChat reports
//     the outcome a person brought about.
//
// A final refund is not asked about again.
func (s *Service) reconcileRefund(ctx context.Context, no string) (err error) {
	r, err := s.store.RefundByOutRefundNo(ctx, no)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx, "charge/"+r.OutTradeNo)
	if err != nil {
		return err
	}
	defer unlock()
	if r, err = s.store.RefundByOutRefundNo(ctx, no); err != nil {
		return err
	}
	if r.NextCheckTime.IsZero() || r.NextCheckTime.After(s.clock.Now()) {
		return nil // handled since it was found due
	}
	defer func() {
		if rerr := s.rescheduleRefund(ctx, no); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	switch {
	case r.State.Final():
		return nil
	case r.State == RefundPending && r.Attempts == 0:
		_, err = s.resendRefund(ctx, r, false)
	case r.State == RefundPending:
		cur, found, qerr := s.queryRefund(ctx, r)
		if qerr != nil || found {
			err = qerr
			break
		}
		_, err = s.resendRefund(ctx, cur, true)
	default:
		_, _, err = s.queryRefund(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("reconcile refund %s: %w", no, err)
	}
	return nil
}

// resendRefund sends a PENDING refund from the reconciler: it records the
// send (on the backoff, in case its answer is lost) and makes it, or, when
// another refund of the charge was sent less than the spacing ago (or
// waits ahead of it), schedules it for then. The caller holds the charge's
// lock.
func (s *Service) resendRefund(ctx context.Context, r Refund, resend bool) (Refund, error) {
	var send bool
	no := r.OutRefundNo
	err := s.inTx(ctx, func(tx Tx) error {
		// Set afresh on each run: a rerun may find the refund no longer
		// PENDING, and must then not send it.
		send = false
		var err error
		if r, err = tx.RefundByOutRefundNo(ctx, no); err != nil {
			return err
		}
		if r.State != RefundPending {
			return nil
		}
		refunds, err := tx.RefundsOfCharge(ctx, r.OutTradeNo)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if slot := sendSlot(refunds, r, s.cfg.Reconcile.RefundSpacing); slot.After(now) {
			r.NextCheckTime = slot
		} else {
			send = true
			r.Attempts++
			r.LastSendTime = now
			r.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(r.Checks))
			r.Checks++
		}
		r.UpdateTime = now
		return tx.UpdateRefund(ctx, r)
	})
	if err != nil || !send {
		return r, err
	}
	s.log.InfoContext(ctx, "sending a pending refund", "out_refund_no", r.OutRefundNo, "attempt", r.Attempts)
	return s.sendRefund(ctx, r, resend)
}

// rescheduleRefund sets when a refund is next looked at, unless this pass
// already did (a send, a spacing wait, a change of state): an open one on
// the backoff, an ABNORMAL one after AbnormalRefundCheck, a final one
// never.
func (s *Service) rescheduleRefund(ctx context.Context, no string) error {
	return s.inTx(ctx, func(tx Tx) error {
		r, err := tx.RefundByOutRefundNo(ctx, no)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		switch {
		case r.State.Final():
			if r.NextCheckTime.IsZero() {
				return nil
			}
			r.NextCheckTime, r.Checks = time.Time{}, 0
		case r.NextCheckTime.After(now):
			return nil
		case r.State == RefundAbnormal:
			r.NextCheckTime = now.Add(s.cfg.Reconcile.AbnormalRefundCheck)
		default:
			r.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(r.Checks))
			r.Checks++
		}
		return tx.UpdateRefund(ctx, r)
	})
}
