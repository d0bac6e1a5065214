package service

import (
	"context"
	"errors"
	"fmt"
)

// CloseCharge reverses (closes) an unpaid charge. A charge WeChat reports
// paid is refreshed to SUCCEEDED and the call fails with ErrOrderPaid; an
// order WeChat already closed is recorded CLOSED and the call succeeds. An
// order WeChat does not know (yet) makes the charge CLOSING, not CLOSED: a
// deduction sent a moment ago may still arrive, and the reconciler decides
// once none can (see Charge).
func (s *Service) CloseCharge(ctx context.Context, outTradeNo string) (Charge, error) {
	k := ChargeKey{OutTradeNo: outTradeNo}
	if err := k.validate(); err != nil {
		return Charge{}, err
	}
	unlock, err := s.lock(ctx, "charge/"+outTradeNo)
	if err != nil {
		return Charge{}, fmt.Errorf("close %s: %w", k, err)
	}
	defer unlock()
	c, err := k.find(ctx, s.store)
	if err != nil {
		return Charge{}, fmt.Errorf("close %s: %w", k, err)
	}
	switch c.State {
	case ChargeClosed, ChargeClosing:
		return c, nil
	case ChargeSucceeded:
		return Charge{}, fmt.Errorf("close %s: %w", k, ErrOrderPaid)
	case ChargeFailed:
		return Charge{}, fmt.Errorf("close %s: %w", k, ErrChargeFinal)
	}
	intent, err := s.recordIntent(ctx, Intent{Kind: IntentClose, Key: outTradeNo}, "CloseCharge", "charges/"+outTradeNo)
	if err != nil {
		return Charge{}, fmt.Errorf("close %s: %w", k, err)
	}
	return s.closeLocked(ctx, c, intent)
}

// closeLocked sends the reverse of intent and records its outcome. The
// caller holds the charge's lock.
func (s *Service) closeLocked(ctx context.Context, c Charge, intent Intent) (Charge, error) {
	k := ChargeKey{OutTradeNo: c.OutTradeNo}
	err := s.wechat.ReverseTransaction(ctx, c.SubMchID, c.OutTradeNo)
	var re *RemoteError
	notFound := false
	switch {
	case err == nil, errors.As(err, &re) && re.Code == "ORDER_CLOSED":
	case errors.As(err, &re) && re.Code == "ORDER_PAID":
		if _, rerr := s.refreshCharge(ctx, c); rerr != nil {
			return Charge{}, fmt.Errorf("close %s: paid, and the refresh failed: %w", k, rerr)
		}
		if rerr := s.resolveIntent(ctx, intent.ID); rerr != nil {
			return Charge{}, fmt.Errorf("close %s: %w", k, rerr)
		}
		return Charge{}, fmt.Errorf("close %s: %w", k, wrap(ErrOrderPaid, "", err))
	case errors.As(err, &re) && re.NotFound() && !c.State.Final():
		// WeChat does not know the order at this instant. That proves
		// nothing while a deduction may still be in flight: CLOSING, and the
		// reconciler closes it once none can be (or finds it paid).
		notFound = true
	default:
		derr := fromRemote("close "+k.String(), err)
		if KindOf(derr) != KindUnavailable {
			if rerr := s.resolveIntent(ctx, intent.ID); rerr != nil {
				return Charge{}, errors.Join(derr, rerr)
			}
		}
		return Charge{}, derr
	}
	err = s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		c = cur
		if err := tx.DeleteIntent(ctx, intent.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		prev := c.State
		// Once no deduction can be in flight any more, WeChat's not knowing
		// the order is final.
		inFlight := s.clock.Now().Before(c.sentAt().Add(s.cfg.Reconcile.InFlight))
		if notFound && inFlight {
			if !c.closing() {
				return nil
			}
		} else if !c.close() {
			return nil
		}
		return s.saveCharge(ctx, tx, &c, prev)
	})
	if err != nil {
		return Charge{}, fmt.Errorf("close %s: record: %w", k, err)
	}
	s.log.InfoContext(ctx, "charge closed", "out_trade_no", c.OutTradeNo, "state", string(c.State))
	return c, nil
}
