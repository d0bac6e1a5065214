package service

import (
	"fmt"
	"reflect"
	"time"
)

// stateOf maps WeChat's trade state to ours; ok is false for a trade state
// this version does not know (the charge then keeps its state).
func stateOf(tradeState string) (ChargeState, bool) {
	switch tradeState {
	case TradeSuccess, TradeRefund:
		return ChargeSucceeded, true
	case TradeUserPaying, TradeNotPay:
		return ChargeProcessing, true
	case TradePayError:
		return ChargeFailed, true
	case TradeClosed, "REVOKED":
		return ChargeClosed, true
	}
	return "", false
}

// mismatch says how rt disagrees with c on money or contract, or "".
func (c *Charge) mismatch(rt RemoteTransaction) string {
	switch {
	case rt.OutTradeNo != "" && rt.OutTradeNo != c.OutTradeNo:
		return fmt.Sprintf("out_trade_no %q, recorded %q", rt.OutTradeNo, c.OutTradeNo)
	case rt.Amount.Total != c.Amount.Total:
		return fmt.Sprintf("amount %d, recorded %d", rt.Amount.Total, c.Amount.Total)
	case rt.Amount.Currency != "" && rt.Amount.Currency != c.Amount.Currency:
		return fmt.Sprintf("currency %s, recorded %s", rt.Amount.Currency, c.Amount.Currency)
	case rt.ContractID != "" && rt.ContractID != c.ContractID:
		return fmt.Sprintf("contract %s, recorded %s", rt.ContractID, c.ContractID)
	case rt.TransactionID != "" && c.TransactionID != "" && rt.TransactionID != c.TransactionID:
		return fmt.Sprintf("transaction %s, recorded %s", rt.TransactionID, c.TransactionID)
	}
	return ""
}

// apply records what WeChat says about c (its caller has checked
// mismatch). It reports whether anything changed. A final state changes
// only to SUCCEEDED: money WeChat took is never lost from the record.
func (c *Charge) apply(rt RemoteTransaction) bool {
	next, known := stateOf(rt.TradeState)
	if !known {
		next = c.State
	}
	if c.State.Final() && next != c.State && next != ChargeSucceeded {
		return false
	}
	if c.State == ChargeClosing && next == ChargeProcessing {
		// An unpaid order a close is waiting for: it stays closing, and the
		// reconciler reverses it.
		next = ChargeClosing
	}
	changed := update(&c.State, next)
	if c.TransactionID == "" {
		changed = update(&c.TransactionID, rt.TransactionID) || changed
	}
	if rt.TradeState != "" {
		// The description belongs to the state: a new state without one
		// clears the old state's.
		changed = update(&c.TradeState, rt.TradeState) || changed
		changed = update(&c.TradeStateDesc, rt.TradeStateDesc) || changed
	}
	if rt.BankType != "" {
		changed = update(&c.BankType, rt.BankType) || changed
	}
	if rt.PayerTotal != 0 || rt.PayerCurrency != "" {
		changed = update(&c.PayerTotal, rt.PayerTotal) || changed
		changed = update(&c.PayerCurrency, rt.PayerCurrency) || changed
	}
	if rt.ExchangeRate != (ExchangeRate{}) {
		changed = update(&c.ExchangeRate, rt.ExchangeRate) || changed
	}
	if at := wechatTime(rt.SuccessTime); !at.IsZero() && !at.Equal(c.SuccessTime) {
		c.SuccessTime, changed = at, true
	}
	if len(rt.PromotionDetail) > 0 && !reflect.DeepEqual(rt.PromotionDetail, c.PromotionDetail) {
		c.PromotionDetail, changed = rt.PromotionDetail, true
	}
	if next == ChargeFailed && c.FailureCode == "" {
		changed = update(&c.FailureCode, rt.TradeState) || changed
		changed = update(&c.FailureMessage, rt.TradeStateDesc) || changed
	}
	if next == ChargeSucceeded {
		changed = update(&c.FailureCode, "") || changed
		changed = update(&c.FailureMessage, "") || changed
	}
	return changed
}

// update sets *dst to v and reports whether that changed it.
func update[T comparable](dst *T, v T) bool {
	if *dst == v {
		return false
	}
	*dst = v
	return true
}

// refuse records a business refusal of the deduction.
func (c *Charge) refuse(code, message string) bool {
	if c.State.Final() {
		return false
	}
	c.State, c.FailureCode, c.FailureMessage = ChargeFailed, code, message
	return true
}

// close records that WeChat closed (reversed) the order. WeChat's answer to
// the reverse carries no trade_state_desc, so the previous state's (such as
// USERPAYING's) is cleared rather than kept beside CLOSED; a later query
// records WeChat's own.
func (c *Charge) close() bool {
	if c.State.Final() {
		return false
	}
	c.State, c.TradeState, c.TradeStateDesc = ChargeClosed, TradeClosed, ""
	return true
}

// closing records a close that WeChat could not apply because it did not
// know the order (yet): a deduction may still be in flight.
func (c *Charge) closing() bool {
	if c.State.Final() || c.State == ChargeClosing {
		return false
	}
	c.State = ChargeClosing
	return true
}

// sentAt is when the deduction was last sent: LastSendTime, or CreateTime
// for a charge recorded before papayd kept it.
func (c *Charge) sentAt() time.Time {
	if c.LastSendTime.IsZero() {
		return c.CreateTime
	}
	return c.LastSendTime
}
