package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// AnomalyRecheck is the anomaly kind of a re-check of a final record that
// found WeChat disagreeing with it.
const AnomalyRecheck = "RECHECK_MISMATCH"

// queryCharge asks WeChat about c and records the answer; found is false
// when WeChat does not know the order (c is then returned as recorded).
func (s *Service) queryCharge(ctx context.Context, c Charge) (_ Charge, found bool, err error) {
	rt, err := s.wechat.QueryTransaction(ctx, TransactionQuery{SubMchID: c.SubMchID, TransactionID: c.TransactionID, OutTradeNo: c.OutTradeNo})
	if err != nil {
		var re *RemoteError
		if errors.As(err, &re) && re.NotFound() {
			c, err = s.store.ChargeByOutTradeNo(ctx, c.OutTradeNo)
			return c, false, err
		}
		return Charge{}, false, fromRemote("query order", err)
	}
	c, err = s.recordTransaction(ctx, c.OutTradeNo, rt)
	return c, true, err
}

// recheckCharge queries a final charge a while after it became final (see
// ReconcileConfig.FinalRechecks). WeChat reporting it paid makes it
// SUCCEEDED, as always; any other disagreement that matters for money (a
// SUCCEEDED charge WeChat does not show paid, a FAILED or CLOSED one whose
// order is still open at WeChat) is recorded as an anomaly and logged. A
// failed query is tried again later; the re-check after it is scheduled.
func (s *Service) recheckCharge(ctx context.Context, c Charge) error {
	rt, qerr := s.wechat.QueryTransaction(ctx, TransactionQuery{SubMchID: c.SubMchID, TransactionID: c.TransactionID, OutTradeNo: c.OutTradeNo})
	var re *RemoteError
	found := qerr == nil
	if qerr != nil && !(errors.As(qerr, &re) && re.NotFound()) {
		qerr = fromRemote("query order", qerr)
	} else {
		qerr = nil
	}
	err := s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		if !cur.State.Final() || !cur.NextCheckTime.Equal(c.NextCheckTime) {
			return nil // changed since it was found due: that change scheduled it
		}
		now := s.clock.Now()
		if qerr != nil {
			cur.NextCheckTime = now.Add(s.cfg.Reconcile.backoff(0))
			return tx.UpdateCharge(ctx, cur)
		}
		prev := cur.State
		outcome := Outcome("")
		if found {
			var err error
			if outcome, err = s.applyTransaction(ctx, tx, &cur, rt, ""); err != nil {
				return err
			}
			if cur.State != prev {
				return nil // applyTransaction logged it, and saveCharge scheduled it
			}
		}
		// The same comparison as papayd verify's; a disagreement on money
		// or contract is already applyTransaction's anomaly.
		if detail := chargeDisagreement(cur, found, rt); detail != "" && outcome != OutcomeAnomaly {
			s.logCommitted(ctx, tx, slog.LevelError, "ANOMALY: a re-check found WeChat disagreeing with a final charge",
				"out_trade_no", cur.OutTradeNo, "detail", detail)
			if err := tx.InsertAnomaly(ctx, Anomaly{Kind: AnomalyRecheck, OutTradeNo: cur.OutTradeNo, Detail: detail, Time: now}); err != nil {
				return err
			}
		}
		cur.CheckAttempts++
		cur.NextCheckTime = s.cfg.Reconcile.recheckAfter(now, cur.CheckAttempts)
		return tx.UpdateCharge(ctx, cur)
	})
	if err != nil {
		return fmt.Errorf("re-check %s: %w", c.OutTradeNo, errors.Join(qerr, err))
	}
	if qerr != nil {
		return fmt.Errorf("re-check %s: %w", c.OutTradeNo, qerr)
	}
	return nil
}
