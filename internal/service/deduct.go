package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// ChargeInput is a request to deduct against an agreement.
type ChargeInput struct {
	OutTradeNo           string
	ContractID           string
	Amount               Money
	Description          string
	Attach               string
	GoodsTag             string
	MerchantCategoryCode string // "" means Config.MerchantCategoryCode
	SceneInfo            SceneInfo
}

func (in *ChargeInput) validate(maxAmount func(currency string) int64) error {
	var v violations
	v.code("out_trade_no", in.OutTradeNo, 32, true)
	v.token("contract_id", in.ContractID, 64, true)
	switch max := maxAmount(in.Amount.Currency); {
	case in.Amount.Total <= 0:
		v.add("amount.total", "is required and must be positive (minor units)")
	case currencies[in.Amount.Currency] && in.Amount.Total > max:
		v.add("amount.total", "must be at most %d %s minor units per charge (PAPAYD_MAX_CHARGE_AMOUNT)", max, in.Amount.Currency)
	}
	if !currencies[in.Amount.Currency] {
		v.add("amount.currency", "must be a WeChat Pay Global ISO 4217 code such as HKD")
	}
	v.text("description", in.Description, 128, true)
	v.text("attach", in.Attach, 127, false)
	v.token("goods_tag", in.GoodsTag, 32, false)
	v.token("merchant_category_code", in.MerchantCategoryCode, 16, true)
	v.token("scene_info.device_id", in.SceneInfo.DeviceID, 32, false)
	v.ip("scene_info.device_ip", in.SceneInfo.DeviceIP, false)
	return v.err()
}

// same reports whether c was created by the same parameters.
func (in *ChargeInput) same(c Charge) bool {
	return c.ContractID == in.ContractID && c.Amount == in.Amount && c.Description == in.Description &&
		c.Attach == in.Attach && c.GoodsTag == in.GoodsTag && c.MerchantCategoryCode == in.MerchantCategoryCode &&
		c.SceneInfo == in.SceneInfo
}

// CreateCharge deducts against a signed agreement, idempotently on
// out_trade_no: the same number with the same parameters answers the
// existing charge (calling WeChat again only while its outcome is unknown);
// other parameters are ErrOutTradeNoReused. The charge is recorded PENDING
// before WeChat is called, so a crash leaves a record to resolve, never an
// unknown deduction. When WeChat's answer is lost (timeout, 5xx) the PENDING
// charge is returned without an error: retry with the same out_trade_no, or
// read it with refresh. A business refusal is a FAILED charge, also without
// an error.
//
// The caller acts for its sub-merchants only: another sub-merchant's
// agreement is answered as an unknown one (ErrAgreementNotSigned), and an
// out_trade_no of another sub-merchant's charge as a number reused with
// other parameters (ErrOutTradeNoReused), once the agreement is the
// caller's and signed.
func (s *Service) CreateCharge(ctx context.Context, in ChargeInput) (Charge, error) {
	if in.MerchantCategoryCode == "" {
		in.MerchantCategoryCode = s.cfg.MerchantCategoryCode
	}
	if err := in.validate(s.cfg.maxChargeAmount); err != nil {
		return Charge{}, err
	}
	unlock, err := s.lock(ctx, "charge/"+in.OutTradeNo)
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: %w", in.OutTradeNo, err)
	}
	defer unlock()

	var c Charge
	var agreement Agreement
	// resend: an earlier send of this charge has an unknown outcome (the
	// charge is PENDING), so a refusal of this one is not final.
	var call, resend bool
	caller := CallerFrom(ctx)
	err = s.inTx(ctx, func(tx Tx) error {
		// Set afresh on each run: a rerun may find the charge moved on
		// (paid meanwhile), and must then not send it.
		c, agreement, call, resend = Charge{}, Agreement{}, false, false
		old, err := tx.ChargeByOutTradeNo(ctx, in.OutTradeNo)
		// foreign: the number is another sub-merchant's charge. It is
		// answered as a new number would be, up to where that would record
		// the charge (see below).
		foreign := err == nil && !caller.Sees(old.SubMchID)
		if err == nil && !foreign {
			if !in.same(old) {
				return ErrOutTradeNoReused
			}
			c = old
			agreement, err = tx.AgreementByContractID(ctx, old.ContractID)
			if err != nil || old.State != ChargePending {
				return notFoundAs(err, ErrAgreementNotFound)
			}
			// Sent again: exactly what was sent before (request()), and the
			// unpaid timeout counts from now.
			call, resend = true, !old.LastSendTime.IsZero()
			c.LastSendTime = s.clock.Now()
			if err := tx.UpdateCharge(ctx, c); err != nil {
				return err
			}
			return s.audit(ctx, tx, "CreateCharge", "charges/"+c.OutTradeNo)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		agreement, err = tx.AgreementByContractID(ctx, in.ContractID)
		if err == nil && !caller.Sees(agreement.SubMchID) {
			err = ErrNotFound // another sub-merchant's: as if there were none
		}
		if errors.Is(err, ErrNotFound) {
			// Not signed as far as papayd knows: the same answer as for a
			// pending or terminated agreement, and WeChat is not asked.
			return wrap(ErrAgreementNotSigned, fmt.Sprintf("no signed agreement with contract_id %s is recorded", in.ContractID), nil)
		}
		if err != nil {
			return err
		}
		if agreement.State != AgreementSigned {
			return wrap(ErrAgreementNotSigned, fmt.Sprintf("agreement %s is %s, not SIGNED", in.ContractID, agreement.State), nil)
		}
		if foreign {
			// out_trade_no is unique across sub-merchants, so a new charge
			// cannot be recorded under it: that the number is taken is the
			// one thing the caller learns. It is the answer to a reuse with
			// other parameters, whatever the parameters, so nothing of the
			// other charge (amount, contract, state) can be probed.
			return ErrOutTradeNoReused
		}
		now := s.clock.Now()
		c = Charge{
			OutTradeNo: in.OutTradeNo, ContractID: in.ContractID, OutContractCode: agreement.OutContractCode,
			OpenID: agreement.OpenID, Merchant: agreement.Merchant, Amount: in.Amount,
			Description: in.Description, Attach: in.Attach, GoodsTag: in.GoodsTag,
			MerchantCategoryCode: in.MerchantCategoryCode, SceneInfo: in.SceneInfo, NotifyURL: s.cfg.NotifyURL,
			State: ChargePending, CreateTime: now, UpdateTime: now, LastSendTime: now,
			NextCheckTime: now.Add(s.cfg.Reconcile.FirstCheck),
		}
		call = true
		if err := tx.CreateCharge(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, "CreateCharge", "charges/"+c.OutTradeNo)
	})
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: %w", in.OutTradeNo, err)
	}
	if !call {
		return c, nil
	}

	req := c.request()
	if req.NotifyURL == "" {
		req.NotifyURL = s.cfg.NotifyURL // a charge recorded before papayd kept it
	}
	rt, err := s.wechat.CreateTransaction(ctx, req)
	if err != nil {
		return s.deductionFailed(ctx, c, agreement, resend, err)
	}
	c, err = s.recordTransaction(ctx, c.OutTradeNo, rt)
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: record answer: %w", in.OutTradeNo, err)
	}
	s.log.InfoContext(ctx, "charge answered", "out_trade_no", c.OutTradeNo, "state", string(c.State),
		"trade_state", c.TradeState, "transaction_id", c.TransactionID)
	return c, nil
}

// deductionFailed handles a deduction call that returned an error. resend
// says an earlier send's outcome is unknown: a refusal may then be about
// that send (OUT_TRADE_NO_USED, ORDER_PAID, ...), so WeChat is asked what
// became of the order instead of taking the refusal as final.
func (s *Service) deductionFailed(ctx context.Context, c Charge, agreement Agreement, resend bool, callErr error) (Charge, error) {
	derr := fromRemote("charge "+c.OutTradeNo, callErr)
	var re *RemoteError
	refused := errors.As(callErr, &re) && !re.Retryable() && re.HTTPStatus != 401
	if refused && resend {
		s.log.WarnContext(ctx, "a resent deduction was refused; asking WeChat what became of the order",
			"out_trade_no", c.OutTradeNo, "code", re.Code)
		cur, err := s.refreshCharge(ctx, c)
		if err != nil {
			s.log.WarnContext(ctx, "charge outcome unknown", "out_trade_no", c.OutTradeNo, "error", err.Error())
			return s.currentCharge(ctx, c.OutTradeNo)
		}
		return cur, nil
	}
	if !refused {
		if KindOf(derr) == KindUnavailable {
			// The outcome is unknown: the PENDING record stands and is the answer.
			s.log.WarnContext(ctx, "charge outcome unknown", "out_trade_no", c.OutTradeNo, "error", callErr.Error())
			return s.currentCharge(ctx, c.OutTradeNo)
		}
		return Charge{}, derr
	}
	err := s.inTx(ctx, func(tx Tx) error {
		cur, err := tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
		if err != nil {
			return err
		}
		c = cur
		prev := c.State
		if !c.refuse(re.Code, re.Message) {
			return nil
		}
		return s.saveCharge(ctx, tx, &c, prev)
	})
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: record refusal: %w", c.OutTradeNo, err)
	}
	s.log.InfoContext(ctx, "charge refused", "out_trade_no", c.OutTradeNo, "code", re.Code)
	if re.Code == "NO_AUTH" || re.Code == "CONTRACT_NOT_EXIST" {
		// WeChat no longer honours the contract: learn why, best effort.
		if _, err := s.refreshAgreement(ctx, agreement); err != nil {
			s.log.WarnContext(ctx, "agreement refresh after refusal failed", "contract_id", agreement.ContractID, "error", err.Error())
		}
	}
	return c, nil
}

// currentCharge reads the charge as recorded.
func (s *Service) currentCharge(ctx context.Context, outTradeNo string) (Charge, error) {
	c, err := s.store.ChargeByOutTradeNo(ctx, outTradeNo)
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: %w", outTradeNo, err)
	}
	return c, nil
}

// saveCharge writes c, changed from state prev, inside tx. A charge that
// has just become final is scheduled for its first re-check; one that has
// just become CLOSING is queried soon.
func (s *Service) saveCharge(ctx context.Context, tx Tx, c *Charge, prev ChargeState) error {
	now := s.clock.Now()
	c.UpdateTime = now
	if c.State != prev {
		switch {
		case c.State.Final():
			c.NextCheckTime, c.CheckAttempts = s.cfg.Reconcile.recheckAfter(now, 0), 0
		case c.State == ChargeClosing:
			c.NextCheckTime, c.CheckAttempts = now.Add(s.cfg.Reconcile.FirstCheck), 0
		}
	}
	return tx.UpdateCharge(ctx, *c)
}

// recordTransaction applies what WeChat says about a charge in one
// transaction and returns the charge as recorded.
func (s *Service) recordTransaction(ctx context.Context, outTradeNo string, rt RemoteTransaction) (Charge, error) {
	var c Charge
	err := s.inTx(ctx, func(tx Tx) error {
		var err error
		if c, err = tx.ChargeByOutTradeNo(ctx, outTradeNo); err != nil {
			return err
		}
		_, err = s.applyTransaction(ctx, tx, &c, rt, "")
		return err
	})
	return c, err
}

// applyTransaction records rt on c inside tx: a disagreement on money or
// contract becomes an Anomaly and changes nothing; otherwise the state
// machine decides. It is shared by the deduction answer, refresh and
// TRANSACTION.SUCCESS.
func (s *Service) applyTransaction(ctx context.Context, tx Tx, c *Charge, rt RemoteTransaction, notificationID string) (Outcome, error) {
	now := s.clock.Now()
	if m := c.mismatch(rt); m != "" {
		s.logCommitted(ctx, tx, slog.LevelError, "ANOMALY: WeChat disagrees with the recorded charge; nothing changed",
			"out_trade_no", c.OutTradeNo, "notification_id", notificationID, "detail", m)
		return OutcomeAnomaly, tx.InsertAnomaly(ctx, Anomaly{Kind: "MISMATCH", OutTradeNo: c.OutTradeNo,
			NotificationID: notificationID, Detail: m, Time: now})
	}
	prev := c.State
	if !c.apply(rt) {
		return OutcomeNoop, nil
	}
	if prev.Final() && prev != c.State {
		detail := fmt.Sprintf("%s charge reported %s by WeChat", prev, rt.TradeState)
		s.logCommitted(ctx, tx, slog.LevelError, "ANOMALY: a final charge changed state", "out_trade_no", c.OutTradeNo, "detail", detail)
		if err := tx.InsertAnomaly(ctx, Anomaly{Kind: "FINAL_STATE_CHANGED", OutTradeNo: c.OutTradeNo,
			NotificationID: notificationID, Detail: detail, Time: now}); err != nil {
			return "", err
		}
	}
	if err := s.saveCharge(ctx, tx, c, prev); err != nil {
		return "", err
	}
	return OutcomeApplied, nil
}
