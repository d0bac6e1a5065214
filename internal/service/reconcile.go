package service

import (
	"context"
	"errors"
	"fmt"
)

// ReconcileReport counts what one reconciliation pass did.
type ReconcileReport struct {
	Intents    int // unresolved intents resumed
	Charges    int // due charges queried
	Agreements int // due agreements queried
	Closed     int // unpaid charges closed after UnpaidTimeout
	Errors     int // records left for a later pass (WeChat unavailable, ...)
}

// Reconcile is one pass of the reconciler: it resumes unresolved intents
// (a crash or a lost answer between sending a call and recording its
// outcome), then asks WeChat about the open records that are due: PENDING
// and PROCESSING charges, PENDING agreements (the user may have signed while
// the notification was lost; an expired session becomes EXPIRED) and SIGNED
// agreements (a termination whose notification went astray). What it learns
// goes through the same code, transactions and audit as a notification
// would. A record whose query fails stays due for the next pass.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var r ReconcileReport
	var errs []error
	note := func(err error) {
		if err != nil {
			r.Errors++
			if len(errs) < 5 {
				errs = append(errs, err)
			}
		}
	}
	intents, err := s.store.OpenIntents(ctx)
	if err != nil {
		return r, fmt.Errorf("reconcile: intents: %w", err)
	}
	for _, in := range intents {
		r.Intents++
		note(s.resumeIntent(ctx, in))
	}
	now := s.clock.Now()
	charges, err := s.store.DueCharges(ctx, now, s.cfg.Reconcile.Batch)
	if err != nil {
		return r, fmt.Errorf("reconcile: due charges: %w", err)
	}
	for _, c := range charges {
		r.Charges++
		closed, err := s.reconcileCharge(ctx, c.OutTradeNo)
		if closed {
			r.Closed++
		}
		note(err)
	}
	agreements, err := s.store.DueAgreements(ctx, now, s.cfg.Reconcile.Batch)
	if err != nil {
		return r, fmt.Errorf("reconcile: due agreements: %w", err)
	}
	for _, a := range agreements {
		r.Agreements++
		note(s.reconcileAgreement(ctx, a))
	}
	return r, errors.Join(errs...)
}

// resumeIntent finishes an intent whose outcome was never recorded.
func (s *Service) resumeIntent(ctx context.Context, in Intent) error {
	switch in.Kind {
	case IntentTerminate:
		unlock := s.locks.lock("contract/" + in.Key)
		defer unlock()
		a, err := s.store.AgreementByContractID(ctx, in.Key)
		if errors.Is(err, ErrNotFound) || (err == nil && a.State == AgreementTerminated) {
			return s.resolveIntent(ctx, in.ID)
		}
		if err != nil {
			return err
		}
		s.log.InfoContext(ctx, "resuming a termination", "contract_id", in.Key)
		_, err = s.terminateLocked(ctx, a, in)
		return err
	case IntentClose:
		unlock := s.locks.lock("charge/" + in.Key)
		defer unlock()
		c, err := s.store.ChargeByOutTradeNo(ctx, in.Key)
		if errors.Is(err, ErrNotFound) || (err == nil && c.State.Final()) {
			return s.resolveIntent(ctx, in.ID)
		}
		if err != nil {
			return err
		}
		s.log.InfoContext(ctx, "resuming a close", "out_trade_no", in.Key)
		_, err = s.closeLocked(ctx, c, in)
		if errors.Is(err, ErrOrderPaid) {
			return nil // resolved: the charge is recorded SUCCEEDED
		}
		return err
	}
	s.log.ErrorContext(ctx, "unknown intent kind; left as is", "kind", string(in.Kind), "key", in.Key)
	return nil
}

// reconcileCharge queries one open charge, records the answer, closes it
// when it stayed unpaid past UnpaidTimeout, and schedules the next query.
func (s *Service) reconcileCharge(ctx context.Context, outTradeNo string) (closed bool, err error) {
	unlock := s.locks.lock("charge/" + outTradeNo)
	defer unlock()
	c, err := s.store.ChargeByOutTradeNo(ctx, outTradeNo)
	if err != nil || c.State.Final() {
		return false, err
	}
	defer func() {
		if rerr := s.rescheduleCharge(ctx, outTradeNo); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if c, err = s.refreshCharge(ctx, c); err != nil {
		return false, fmt.Errorf("reconcile %s: %w", outTradeNo, err)
	}
	if c.State.Final() || s.clock.Now().Sub(c.CreateTime) < s.cfg.Reconcile.UnpaidTimeout {
		return false, nil
	}
	s.log.InfoContext(ctx, "closing a charge unpaid past the timeout", "out_trade_no", outTradeNo, "state", string(c.State))
	intent, err := s.recordIntent(ctx, Intent{Kind: IntentClose, Key: outTradeNo})
	if err != nil {
		return false, err
	}
	c, err = s.closeLocked(ctx, c, intent)
	if errors.Is(err, ErrOrderPaid) {
		return false, nil
	}
	return err == nil && c.State == ChargeClosed, err
}

// rescheduleCharge sets when an open charge is next queried.
func (s *Service) rescheduleCharge(ctx context.Context, outTradeNo string) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		c, err := tx.ChargeByOutTradeNo(ctx, outTradeNo)
		if err != nil || c.State.Final() {
			return err
		}
		c.NextCheckTime = s.clock.Now().Add(s.cfg.Reconcile.backoff(c.CheckAttempts))
		c.CheckAttempts++
		return tx.UpdateCharge(ctx, c)
	})
}

// reconcileAgreement queries one due agreement, records the answer and
// schedules the next query: PENDING on the backoff, SIGNED every
// SignedRecheck, never once it is TERMINATED or EXPIRED.
func (s *Service) reconcileAgreement(ctx context.Context, a Agreement) (err error) {
	_, err = s.refreshAgreement(ctx, a)
	if err != nil {
		err = fmt.Errorf("reconcile %s: %w", a.OutContractCode, err)
	}
	rerr := s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		switch cur.State {
		case AgreementPending:
			cur.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(cur.CheckAttempts))
			cur.CheckAttempts++
		case AgreementSigned:
			cur.NextCheckTime, cur.CheckAttempts = now.Add(s.cfg.Reconcile.SignedRecheck), 0
		default:
			return nil
		}
		return tx.UpdateAgreement(ctx, cur)
	})
	return errors.Join(err, rerr)
}
