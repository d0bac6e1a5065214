package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ReconcileReport counts what one reconciliation pass did.
type ReconcileReport struct {
	Intents    int // unresolved intents resumed
	Charges    int // due charges queried
	Agreements int // due agreements queried
	Refunds    int // due refunds sent or queried
	Closed     int // unpaid charges closed after UnpaidTimeout
	Rechecked  int // final charges and expired agreements queried again
	Errors     int // records left for a later pass (WeChat unavailable, ...)
	Pruned     int // events older than the retention deleted
}

// Reconcile is one pass of the reconciler: it resumes unresolved intents
// (a crash or a lost answer between sending a call and recording its
// outcome), then asks WeChat about the open records that are due: PENDING
// and PROCESSING charges, PENDING agreements (the user may have signed while
// the notification was lost; an expired session becomes EXPIRED) and SIGNED
// agreements (a termination whose notification went astray), and due
// refunds (sent when their time comes, queried until final: see
// reconcileRefund). What it learns
// goes through the same code, transactions and audit as a notification
// would. A record whose query fails stays due for the next pass.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var r ReconcileReport
	var errs []error
	// note counts a record's failure; a failure of the store itself (a full
	// disk, an I/O error) ends the pass: what WeChat would answer could not
	// be recorded, and the reconciler backs off (ErrStoreFailing).
	note := func(err error) error {
		if err == nil {
			return nil
		}
		r.Errors++
		if storeFailure(err) {
			return fmt.Errorf("reconcile: %w: %w", ErrStoreFailing, err)
		}
		if len(errs) < 5 {
			errs = append(errs, err)
		}
		return nil
	}
	// Every replica on the store runs passes: each claims what it works on,
	// so two never query, close or resend one record at the same moment,
	// and lets its claims go once the pass is over (a replica that dies
	// loses them when they expire).
	now := s.clock.Now()
	due, err := s.store.ClaimDue(ctx, now, s.cfg.Reconcile.Batch, Lease{Owner: s.cfg.Replica, TTL: s.cfg.LeaseTTL})
	if err != nil {
		return r, fmt.Errorf("reconcile: claim due records: %w: %w", ErrStoreFailing, err)
	}
	defer func() {
		if err := s.store.ReleaseClaims(context.WithoutCancel(ctx), s.cfg.Replica); err != nil {
			s.log.WarnContext(ctx, "reconciler claims not released; they expire", "ttl", s.cfg.LeaseTTL.String(), "error", err.Error())
		}
	}()
	for _, in := range due.Intents {
		r.Intents++
		if err := note(s.resumeIntent(ctx, in)); err != nil {
			return r, err
		}
	}
	for _, c := range due.Charges {
		if c.State.Final() {
			r.Rechecked++
		} else {
			r.Charges++
		}
		closed, err := s.reconcileCharge(ctx, c.OutTradeNo)
		if closed {
			r.Closed++
		}
		if err := note(err); err != nil {
			return r, err
		}
	}
	for _, a := range due.Agreements {
		if a.State == AgreementExpired {
			r.Rechecked++
		} else {
			r.Agreements++
		}
		if err := note(s.reconcileAgreement(ctx, a)); err != nil {
			return r, err
		}
	}
	for _, rf := range due.Refunds {
		r.Refunds++
		if err := note(s.reconcileRefund(ctx, rf.OutRefundNo)); err != nil {
			return r, err
		}
	}
	if r.Pruned, err = s.pruneEvents(ctx); err != nil {
		return r, fmt.Errorf("reconcile: %w: %w", ErrStoreFailing, err)
	}
	return r, errors.Join(errs...)
}

// ErrStoreFailing marks a reconciliation pass that the store's failure
// ended: the reconciler backs off before the next one.
var ErrStoreFailing = errors.New("the store is failing")

// storeFailure reports whether err, a record's reconciliation failure, is
// the store's: not WeChat's answer or unavailability, not a domain
// refusal, not the pass's own context ending.
func storeFailure(err error) bool {
	var re *RemoteError
	switch {
	case errors.As(err, &re), errors.Is(err, ErrWeChatUnavailable), errors.Is(err, ErrWeChatAuth),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return KindOf(err) == KindInternal
}

// resumeIntent finishes an intent whose outcome was never recorded.
func (s *Service) resumeIntent(ctx context.Context, in Intent) error {
	switch in.Kind {
	case IntentTerminate:
		unlock, err := s.lock(ctx, "contract/"+in.Key)
		if err != nil {
			return err
		}
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
		unlock, err := s.lock(ctx, "charge/"+in.Key)
		if err != nil {
			return err
		}
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

// reconcileCharge queries one due charge and acts on the answer. An open
// charge records it, is closed when it stayed unpaid UnpaidTimeout after
// its last send, and is scheduled again. A CLOSING charge whose order
// WeChat still does not know becomes CLOSED once InFlight has passed since
// its last send; an unpaid order that turned up is reversed. A final charge
// is re-checked (recheckCharge).
func (s *Service) reconcileCharge(ctx context.Context, outTradeNo string) (closed bool, err error) {
	unlock, err := s.lock(ctx, "charge/"+outTradeNo)
	if err != nil {
		return false, err
	}
	defer unlock()
	c, err := s.store.ChargeByOutTradeNo(ctx, outTradeNo)
	if err != nil {
		return false, err
	}
	if c.State.Final() {
		return false, s.recheckCharge(ctx, c)
	}
	defer func() {
		if rerr := s.rescheduleCharge(ctx, outTradeNo); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	c, found, err := s.queryCharge(ctx, c)
	if err != nil {
		return false, fmt.Errorf("reconcile %s: %w", outTradeNo, err)
	}
	now := s.clock.Now()
	switch {
	case c.State.Final():
		return false, nil
	case c.State == ChargeClosing && !found:
		if now.Before(c.sentAt().Add(s.cfg.Reconcile.InFlight)) {
			return false, nil // a deduction may still arrive
		}
		c, err = s.finishClosing(ctx, c)
		return err == nil && c.State == ChargeClosed, err
	case c.State == ChargeClosing:
		s.log.InfoContext(ctx, "the order of a closing charge turned up unpaid; reversing it", "out_trade_no", outTradeNo)
	case now.Sub(c.sentAt()) < s.cfg.Reconcile.UnpaidTimeout:
		return false, nil
	default:
		s.log.InfoContext(ctx, "closing a charge unpaid past the timeout", "out_trade_no", outTradeNo, "state", string(c.State))
	}
	intent, err := s.recordIntent(ctx, Intent{Kind: IntentClose, Key: outTradeNo}, "CloseCharge", "charges/"+outTradeNo)
	if err != nil {
		return false, err
	}
	c, err = s.closeLocked(ctx, c, intent)
	if errors.Is(err, ErrOrderPaid) {
		return false, nil
	}
	return err == nil && c.State == ChargeClosed, err
}

// finishClosing records CLOSED for a CLOSING charge whose order WeChat
// still does not know after no deduction can be in flight any more.
func (s *Service) finishClosing(ctx context.Context, c Charge) (Charge, error) {
	err := s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		c = cur
		if c.State != ChargeClosing {
			return nil
		}
		prev := c.State
		c.close()
		return s.saveCharge(ctx, tx, &c, prev)
	})
	if err != nil {
		return Charge{}, fmt.Errorf("close %s: record: %w", c.OutTradeNo, err)
	}
	s.log.InfoContext(ctx, "charge closed: WeChat never received the deduction", "out_trade_no", c.OutTradeNo)
	return c, nil
}

// rescheduleCharge sets when an open charge is next queried: on the
// backoff, and a CLOSING one no later than the end of its in-flight window.
func (s *Service) rescheduleCharge(ctx context.Context, outTradeNo string) error {
	return s.inTx(ctx, func(tx Tx) error {
		c, err := tx.ChargeByOutTradeNo(ctx, outTradeNo)
		if err != nil || c.State.Final() {
			return err
		}
		now := s.clock.Now()
		c.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(c.CheckAttempts))
		if deadline := c.sentAt().Add(s.cfg.Reconcile.InFlight); c.State == ChargeClosing &&
			deadline.After(now) && deadline.Before(c.NextCheckTime) {
			c.NextCheckTime = deadline
		}
		c.CheckAttempts++
		return tx.UpdateCharge(ctx, c)
	})
}

// reconcileAgreement queries one due agreement, records the answer and
// schedules the next query: PENDING on the backoff, SIGNED every
// SignedRecheck, EXPIRED for its re-checks, never once it is TERMINATED.
func (s *Service) reconcileAgreement(ctx context.Context, a Agreement) (err error) {
	if a.State != AgreementTerminated {
		cur, qerr := s.refreshAgreement(ctx, a)
		if qerr != nil {
			err = fmt.Errorf("reconcile %s: %w", a.OutContractCode, qerr)
		} else if a.State == AgreementExpired && cur.State != AgreementExpired {
			s.log.ErrorContext(ctx, "ANOMALY: a re-check found an expired agreement "+string(cur.State),
				"out_contract_code", a.OutContractCode, "contract_id", cur.ContractID)
		}
	}
	queryFailed := err != nil
	rerr := s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.AgreementByOutContractCode(ctx, a.OutContractCode)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		switch {
		case cur.State == AgreementPending:
			cur.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(cur.CheckAttempts))
			cur.CheckAttempts++
		case cur.State == AgreementSigned:
			cur.NextCheckTime, cur.CheckAttempts = now.Add(s.cfg.Reconcile.SignedRecheck), 0
		case cur.State == AgreementExpired && a.State == AgreementExpired:
			if queryFailed {
				// The re-check failed: try again later, same re-check.
				cur.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(0))
			} else {
				cur.CheckAttempts++
				cur.NextCheckTime = s.cfg.Reconcile.recheckAfter(now, cur.CheckAttempts)
			}
		case cur.State == AgreementExpired:
			return nil // it expired in this pass, and its re-checks are scheduled
		default:
			if cur.NextCheckTime.IsZero() {
				return nil
			}
			cur.NextCheckTime, cur.CheckAttempts = time.Time{}, 0
		}
		if a.State == AgreementExpired && cur.State == AgreementSigned {
			if err := tx.InsertAnomaly(ctx, Anomaly{Kind: AnomalyRecheck, Time: now,
				Detail: fmt.Sprintf("agreement %s was EXPIRED; WeChat says SIGNED (contract %s)", cur.OutContractCode, cur.ContractID)}); err != nil {
				return err
			}
		}
		return tx.UpdateAgreement(ctx, cur)
	})
	return errors.Join(err, rerr)
}
