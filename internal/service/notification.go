package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Event types of WeChat Pay notifications.
const (
	EventContractSigned     = "PAPAY.SIGN"
	EventContractTerminated = "PAPAY.TERMINATE"
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
)

// Notification is a verified, decrypted WeChat Pay notification.
type Notification struct {
	ID string
	// SpMchID and SubMchID are the merchants the resource names (empty when
	// it names none). They scope ID: WeChat does not document notification
	// ids as unique across merchants, so the exactly-once key is all three.
	SpMchID    string
	SubMchID   string
	EventType  string
	Summary    string
	CreateTime time.Time
	// Resource is the decrypted resource as WeChat sent it. It is stored,
	// never logged.
	Resource []byte
	// Contract is the decoded resource of PAPAY.* events.
	Contract *ContractEvent
	// Transaction is the decoded resource of TRANSACTION.SUCCESS (WeChat's
	// "transaction_id", or "id" in the generic payment naming).
	Transaction *RemoteTransaction
	// Refund is the decoded resource of REFUND.SUCCESS, REFUND.CLOSED and
	// REFUND.ABNORMAL.
	Refund *RemoteRefund
}

// ContractEvent is the resource of PAPAY.SIGN and PAPAY.TERMINATE.
type ContractEvent struct {
	SpMchID string
	Merchant
	OutContractCode string
	ContractID      string
	PlanID          int64
	OpenID          string
	OperateTime     time.Time
	TerminationMode TerminationMode // PAPAY.TERMINATE only
}

// Outcome is what processing a notification did.
type Outcome string

// The outcomes.
const (
	// OutcomeApplied: the notification changed the local record.
	OutcomeApplied Outcome = "APPLIED"
	// OutcomeNoop: the local record already said so (e.g. the merchant's
	// own termination was recorded before its notification arrived).
	OutcomeNoop Outcome = "NOOP"
	// OutcomeDuplicate: this notification id was processed before.
	OutcomeDuplicate Outcome = "DUPLICATE"
	// OutcomeUnmatched: no local record matches; the notification is
	// stored for later reconciliation.
	OutcomeUnmatched Outcome = "UNMATCHED"
	// OutcomeUnhandled: an event type this version does not process; it is
	// stored, not dropped.
	OutcomeUnhandled Outcome = "UNHANDLED"
	// OutcomeAnomaly: the notification disagrees with the local record
	// (amount, currency, contract); it is stored with an Anomaly and changes
	// no money field.
	OutcomeAnomaly Outcome = "ANOMALY"
)

// NotificationKey identifies a notification for exactly-once processing.
type NotificationKey struct {
	SpMchID  string
	SubMchID string
	ID       string
}

// NotificationRecord is a processed notification as stored.
type NotificationRecord struct {
	ID              string
	SpMchID         string
	SubMchID        string
	EventType       string
	Summary         string
	CreateTime      time.Time
	ReceiveTime     time.Time
	Outcome         Outcome
	OutContractCode string
	ContractID      string
	OutTradeNo      string
	TransactionID   string
	OutRefundNo     string
	Resource        []byte
}

// errDuplicate aborts the transaction of a notification seen before.
var errDuplicate = errors.New("duplicate notification")

// HandleNotification applies n exactly once: the state change and the
// record of n.ID commit in one transaction, so a duplicate (even a
// concurrent one) changes nothing. It returns a storage error when the
// outcome could not be made durable; the caller must then not acknowledge.
func (s *Service) HandleNotification(ctx context.Context, n Notification) (Outcome, error) {
	if n.ID == "" {
		return "", wrap(ErrNotificationMalformed, "notification has no id", nil)
	}
	received := NotificationRecord{
		ID: n.ID, SpMchID: n.SpMchID, SubMchID: n.SubMchID, EventType: n.EventType, Summary: n.Summary, CreateTime: n.CreateTime,
		ReceiveTime: s.clock.Now(), Resource: n.Resource,
	}
	var rec NotificationRecord
	var outcome Outcome
	err := s.inTx(ctx, func(tx Tx) error {
		rec, outcome = received, "" // set afresh on each run
		// A redelivery (WeChat resends until it sees our answer) stops at
		// its id, before any record is read or compared.
		key := NotificationKey{SpMchID: n.SpMchID, SubMchID: n.SubMchID, ID: n.ID}
		if seen, err := tx.NotificationRecorded(ctx, key); err != nil || seen {
			if seen {
				err = errDuplicate
			}
			return err
		}
		outcome = OutcomeUnhandled
		var err error
		switch {
		case n.Contract != nil && (n.EventType == EventContractSigned || n.EventType == EventContractTerminated):
			rec.OutContractCode, rec.ContractID = n.Contract.OutContractCode, n.Contract.ContractID
			outcome, err = s.applyContractEvent(ctx, tx, n.EventType, n.Contract)
		case n.Transaction != nil && n.EventType == EventTransactionSuccess:
			rec.OutTradeNo, rec.TransactionID, rec.ContractID = n.Transaction.OutTradeNo, n.Transaction.TransactionID, n.Transaction.ContractID
			outcome, err = s.applyTransactionEvent(ctx, tx, n)
		case n.Refund != nil && refundNotification(n.EventType):
			rec.OutRefundNo, rec.OutTradeNo, rec.TransactionID = n.Refund.OutRefundNo, n.Refund.OutTradeNo, n.Refund.TransactionID
			outcome, err = s.applyRefundEvent(ctx, tx, n)
		}
		if err != nil {
			return err
		}
		rec.Outcome = outcome
		if err := tx.InsertNotification(ctx, rec); err != nil {
			if errors.Is(err, ErrConflict) {
				return errDuplicate
			}
			return err
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		s.log.InfoContext(ctx, "notification duplicate", "notification_id", n.ID, "event_type", n.EventType)
		return OutcomeDuplicate, nil
	}
	if err != nil {
		return "", fmt.Errorf("notification %s: %w", n.ID, err)
	}
	s.log.InfoContext(ctx, "notification processed", "notification_id", n.ID, "event_type", n.EventType,
		"outcome", string(outcome), "out_contract_code", rec.OutContractCode, "contract_id", rec.ContractID,
		"out_trade_no", rec.OutTradeNo, "out_refund_no", rec.OutRefundNo)
	return outcome, nil
}

// applyContractEvent applies PAPAY.SIGN / PAPAY.TERMINATE inside tx.
func (s *Service) applyContractEvent(ctx context.Context, tx Tx, eventType string, ev *ContractEvent) (Outcome, error) {
	a, err := findForEvent(ctx, tx, ev)
	if errors.Is(err, ErrNotFound) {
		s.logCommitted(ctx, tx, slog.LevelWarn, "notification for an unknown agreement", "event_type", eventType,
			"out_contract_code", ev.OutContractCode, "contract_id", ev.ContractID)
		return OutcomeUnmatched, nil
	}
	if err != nil {
		return "", err
	}
	at := ev.OperateTime
	if at.IsZero() {
		at = s.clock.Now()
	}
	var changed bool
	if eventType == EventContractSigned {
		changed = a.sign(ev.ContractID, ev.OpenID, at)
	} else {
		mode := ev.TerminationMode
		if mode == "" {
			mode = TerminatedByUser
		}
		changed = a.terminate(ev.ContractID, mode, "", at)
	}
	if !changed {
		return OutcomeNoop, nil
	}
	a.UpdateTime = s.clock.Now()
	if err := tx.UpdateAgreement(ctx, a); err != nil {
		return "", err
	}
	return OutcomeApplied, nil
}

// findForEvent finds the agreement a contract event is about: by our own
// out_contract_code (and plan), else by WeChat's contract id.
func findForEvent(ctx context.Context, tx Tx, ev *ContractEvent) (Agreement, error) {
	if ev.OutContractCode != "" {
		a, err := tx.AgreementByOutContractCode(ctx, ev.OutContractCode)
		if err == nil && (ev.PlanID == 0 || a.PlanID == ev.PlanID) &&
			(a.ContractID == "" || ev.ContractID == "" || a.ContractID == ev.ContractID) {
			return a, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Agreement{}, err
		}
	}
	if ev.ContractID != "" {
		return tx.AgreementByContractID(ctx, ev.ContractID)
	}
	return Agreement{}, ErrNotFound
}

// applyTransactionEvent applies TRANSACTION.SUCCESS inside tx: matched by
// out_trade_no (else transaction id), compared on money and contract, and
// applied through the same state machine as a deduction answer.
func (s *Service) applyTransactionEvent(ctx context.Context, tx Tx, n Notification) (Outcome, error) {
	rt := *n.Transaction
	if rt.TradeState == "" {
		rt.TradeState = TradeSuccess
	}
	c, err := tx.ChargeByOutTradeNo(ctx, rt.OutTradeNo)
	if errors.Is(err, ErrNotFound) && rt.TransactionID != "" {
		c, err = tx.ChargeByTransactionID(ctx, rt.TransactionID)
	}
	if errors.Is(err, ErrNotFound) {
		s.logCommitted(ctx, tx, slog.LevelWarn, "notification for an unknown charge", "out_trade_no", rt.OutTradeNo, "transaction_id", rt.TransactionID)
		return OutcomeUnmatched, nil
	}
	if err != nil {
		return "", err
	}
	return s.applyTransaction(ctx, tx, &c, rt, n.ID)
}

// refundNotification reports whether eventType is a REFUND.* event.
func refundNotification(eventType string) bool {
	switch eventType {
	case NotificationRefundSuccess, NotificationRefundClosed, NotificationRefundAbnormal:
		return true
	}
	return false
}

// applyRefundEvent applies REFUND.SUCCESS, REFUND.CLOSED or
// REFUND.ABNORMAL inside tx: matched by out_refund_no (else refund id),
// compared on identity and money, and applied through the same state
// machine as a refund answer or query. refund_status decides; the event
// type stands in for it when the resource has none.
func (s *Service) applyRefundEvent(ctx context.Context, tx Tx, n Notification) (Outcome, error) {
	rr := *n.Refund
	if rr.Status == "" {
		rr.Status = map[string]string{NotificationRefundSuccess: RefundStatusSuccess,
			NotificationRefundClosed: RefundStatusClosed, NotificationRefundAbnormal: RefundStatusAbnormal}[n.EventType]
	}
	r, err := Refund{}, error(ErrNotFound)
	if rr.OutRefundNo != "" {
		r, err = tx.RefundByOutRefundNo(ctx, rr.OutRefundNo)
	}
	if errors.Is(err, ErrNotFound) && rr.RefundID != "" {
		r, err = tx.RefundByRefundID(ctx, rr.RefundID)
	}
	if errors.Is(err, ErrNotFound) {
		s.logCommitted(ctx, tx, slog.LevelWarn, "notification for an unknown refund", "out_refund_no", rr.OutRefundNo, "refund_id", rr.RefundID)
		return OutcomeUnmatched, nil
	}
	if err != nil {
		return "", err
	}
	return s.applyRefund(ctx, tx, &r, rr, n.ID)
}
