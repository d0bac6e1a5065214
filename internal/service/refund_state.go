package service

import "fmt"

// The refund state machine. One function decides each transition:
//
//	from \ WeChat says   SUCCESS    PROCESSING  ABNORMAL   CLOSED     (none: create answer)
//	PENDING              SUCCEEDED  PROCESSING  ABNORMAL   CLOSED     PROCESSING
//	PROCESSING           SUCCEEDED  -           ABNORMAL   CLOSED     -
//	ABNORMAL             SUCCEEDED  - (stays)   -          CLOSED     - (stays)
//	SUCCEEDED            -          - (stays)   - (stays)  - (stays)  -
//	CLOSED, FAILED       SUCCEEDED  - (stays)   - (stays)  -          -
//
// A final refund changes only to SUCCEEDED: money WeChat moved is never
// lost from the record, as for charges: a CLOSED or FAILED refund WeChat
// reports SUCCESS becomes SUCCEEDED (it counts again against the charge,
// and refunded_total includes it), with a FINAL_STATE_CHANGED anomaly.
// Any other report about a final refund changes nothing (a late or
// out-of-order notification, a stale query). A refusal (refuse) makes only
// a PENDING refund FAILED.

// refundStateOf maps WeChat's refund status to ours; ok is false for a
// status this version does not know (the refund then keeps its state).
// An empty status (a create answer) means accepted: PROCESSING.
func refundStateOf(status string) (RefundState, bool) {
	switch status {
	case RefundStatusSuccess:
		return RefundSucceeded, true
	case RefundStatusProcessing, "":
		return RefundProcessing, true
	case RefundStatusAbnormal:
		return RefundAbnormal, true
	case RefundStatusClosed, RefundStatusRefundClose:
		return RefundClosed, true
	}
	return "", false
}

// next is the state r, not final or told SUCCESS (see apply), moves to
// when WeChat reports status.
func (r *Refund) next(status string) RefundState {
	next, known := refundStateOf(status)
	switch {
	case !known:
		return r.State
	case r.State == RefundAbnormal && next == RefundProcessing:
		// WeChat already found the money stuck: a PROCESSING answer (a
		// stale query, the create answer) does not take that back.
		return r.State
	}
	return next
}

// mismatch says how rr disagrees with r on identity or money, or "". A
// field WeChat left out (empty, or zero for an amount) is not compared.
func (r *Refund) mismatch(rr RemoteRefund) string {
	switch {
	case rr.OutRefundNo != "" && rr.OutRefundNo != r.OutRefundNo:
		return fmt.Sprintf("out_refund_no %q, recorded %q", rr.OutRefundNo, r.OutRefundNo)
	case rr.OutTradeNo != "" && rr.OutTradeNo != r.OutTradeNo:
		return fmt.Sprintf("refund %s: out_trade_no %q, recorded %q", r.OutRefundNo, rr.OutTradeNo, r.OutTradeNo)
	case rr.SubMchID != "" && rr.SubMchID != r.SubMchID:
		return fmt.Sprintf("refund %s: sub_mchid %s, recorded %s", r.OutRefundNo, rr.SubMchID, r.SubMchID)
	case rr.Refund != 0 && rr.Refund != r.Amount.Total:
		return fmt.Sprintf("refund %s: amount %d, recorded %d", r.OutRefundNo, rr.Refund, r.Amount.Total)
	case rr.Total != 0 && rr.Total != r.ChargeTotal:
		return fmt.Sprintf("refund %s: order total %d, recorded %d", r.OutRefundNo, rr.Total, r.ChargeTotal)
	case rr.Currency != "" && rr.Currency != r.Amount.Currency:
		return fmt.Sprintf("refund %s: currency %s, recorded %s", r.OutRefundNo, rr.Currency, r.Amount.Currency)
	case rr.TransactionID != "" && r.TransactionID != "" && rr.TransactionID != r.TransactionID:
		return fmt.Sprintf("refund %s: transaction %s, recorded %s", r.OutRefundNo, rr.TransactionID, r.TransactionID)
	case rr.RefundID != "" && r.RefundID != "" && rr.RefundID != r.RefundID:
		return fmt.Sprintf("refund %s: refund id %s, recorded %s", r.OutRefundNo, rr.RefundID, r.RefundID)
	}
	return ""
}

// apply records what WeChat says about r (its caller has checked
// mismatch) and reports whether anything changed. The state follows next.
func (r *Refund) apply(rr RemoteRefund) bool {
	said, known := refundStateOf(rr.Status)
	if known && r.State.Final() && said != r.State && said != RefundSucceeded {
		return false // a final refund is kept as it is (see the table)
	}
	next := r.next(rr.Status)
	changed := update(&r.State, next)
	if r.RefundID == "" {
		changed = update(&r.RefundID, rr.RefundID) || changed
	}
	if r.TransactionID == "" {
		changed = update(&r.TransactionID, rr.TransactionID) || changed
	}
	if rr.Status != "" && (!known || said == next) {
		// WeChat's word, unless the state did not follow it (a stale
		// PROCESSING over ABNORMAL).
		changed = update(&r.Status, rr.Status) || changed
	}
	if rr.Channel != "" {
		changed = update(&r.Channel, rr.Channel) || changed
	}
	if rr.RecvAccount != "" {
		changed = update(&r.RecvAccount, rr.RecvAccount) || changed
	}
	if rr.FundSource != "" {
		changed = update(&r.FundSource, rr.FundSource) || changed
	}
	if rr.PayerRefund != 0 || rr.PayerCurrency != "" {
		changed = update(&r.PayerRefund, rr.PayerRefund) || changed
		changed = update(&r.PayerCurrency, rr.PayerCurrency) || changed
	}
	if rr.ExchangeRate != (ExchangeRate{}) {
		changed = update(&r.ExchangeRate, rr.ExchangeRate) || changed
	}
	if at := wechatTime(rr.SuccessTime); !at.IsZero() && !at.Equal(r.SuccessTime) {
		r.SuccessTime, changed = at, true
	}
	if next != RefundPending {
		// WeChat answered about it: the last send's error is history.
		changed = update(&r.LastError, "") || changed
	}
	if next == RefundSucceeded {
		changed = update(&r.FailureCode, "") || changed
		changed = update(&r.FailureMessage, "") || changed
	}
	return changed
}

// refuse records WeChat's final refusal of a PENDING refund.
func (r *Refund) refuse(code, message string) bool {
	if r.State != RefundPending {
		return false
	}
	r.State, r.FailureCode, r.FailureMessage, r.LastError = RefundFailed, code, message, ""
	return true
}

// refundRetryable reports whether a refusal of a refund is to be retried
// later with the same out_refund_no: NOT_ENOUGH (the institution's CNY
// pool is short today), BIZERR_NEED_RETRY, SYSTEM_ERROR,
// FREQUENCY_LIMITED, and whatever RemoteError.Retryable says (5xx, 429).
func refundRetryable(re *RemoteError) bool {
	return re.Code == "NOT_ENOUGH" || re.Retryable()
}

// refundEvent decides the event of a refund written as next, over prev
// (nil: created). An unchanged state appends nothing; PROCESSING (and
// PENDING, which is only ever a refund's first state) has none: papayd's
// and WeChat's wait, which ends in one of the events that has one.
func refundEvent(prev *Refund, next Refund) (EventType, bool) {
	if prev == nil {
		return EventRefundCreated, true
	}
	if prev.State == next.State {
		return "", false
	}
	switch next.State {
	case RefundSucceeded:
		return EventRefundSucceeded, true
	case RefundClosed:
		return EventRefundClosed, true
	case RefundAbnormal:
		return EventRefundAbnormal, true
	case RefundFailed:
		return EventRefundFailed, true
	}
	return "", false
}
