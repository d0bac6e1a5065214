package service

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// EventType names what changed.
type EventType string

// The event types: the one list. A resource added later adds its own here.
const (
	EventAgreementCreated    EventType = "agreement.created"
	EventAgreementSigned     EventType = "agreement.signed"
	EventAgreementTerminated EventType = "agreement.terminated"
	EventAgreementExpired    EventType = "agreement.expired"
	EventChargeCreated       EventType = "charge.created"
	EventChargeProcessing    EventType = "charge.processing"
	EventChargeSucceeded     EventType = "charge.succeeded"
	EventChargeFailed        EventType = "charge.failed"
	EventChargeClosed        EventType = "charge.closed"
	EventAnomalyDetected     EventType = "anomaly.detected"
	EventRefundCreated       EventType = "refund.created"
	EventRefundSucceeded     EventType = "refund.succeeded"
	EventRefundClosed        EventType = "refund.closed"
	EventRefundAbnormal      EventType = "refund.abnormal"
	EventRefundFailed        EventType = "refund.failed"
)

// EventTypes lists every event type, for validation and metrics.
var EventTypes = []EventType{
	EventAgreementCreated, EventAgreementSigned, EventAgreementTerminated, EventAgreementExpired,
	EventChargeCreated, EventChargeProcessing, EventChargeSucceeded, EventChargeFailed, EventChargeClosed,
	EventAnomalyDetected,
	EventRefundCreated, EventRefundSucceeded, EventRefundClosed, EventRefundAbnormal, EventRefundFailed,
}

// Event is one change, appended in the transaction of the change: the
// resource as it is after it. Events are immutable.
type Event struct {
	ID         string // evt_..., unique, never changes
	Sequence   uint64 // rises in commit order
	Type       EventType
	CreateTime time.Time
	SubMchID   string
	// Exactly one of the resources, after the change.
	Agreement *Agreement
	Charge    *Charge
	Anomaly   *Anomaly
	Refund    *Refund
}

// EventFilter selects events after a cursor, in sequence order. Zero
// fields do not filter.
type EventFilter struct {
	AfterSequence uint64
	Types         []EventType
	SubMchIDs     []string // the caller's allowed set, intersected with SubMchID
	SubMchID      string
	PageSize      int
	// WithoutResources leaves out what each event carries (Agreement,
	// Charge, Anomaly and Refund stay nil) for a reader that needs only
	// which events there are: the store neither reads nor decodes them.
	WithoutResources bool
}

// ErrEventCursorExpired answers a cursor older than the oldest event kept
// (PAPAYD_EVENT_RETENTION): events after it were pruned, so a reader going
// on from it would miss them. Start again from 0 (the oldest kept) after a
// full resynchronisation.
var ErrEventCursorExpired = &Error{Kind: KindOutOfRange, Reason: "EVENT_CURSOR_EXPIRED",
	Message: "after_sequence is older than the oldest event kept; events after it were pruned"}

// ErrEventNotFound answers GetEvent for an id that is not recorded (or
// was pruned, or is another sub-merchant's).
var ErrEventNotFound = &Error{Kind: KindNotFound, Reason: "EVENT_NOT_FOUND", Message: "event not found"}

// Valid reports whether t is one of EventTypes.
func (t EventType) Valid() bool {
	for _, x := range EventTypes {
		if x == t {
			return true
		}
	}
	return false
}

// agreementEvent decides the event of an agreement written as next, over
// prev (nil: created). An unchanged state appends nothing.
func agreementEvent(prev *Agreement, next Agreement) (EventType, bool) {
	if prev == nil {
		return EventAgreementCreated, true
	}
	if prev.State == next.State {
		return "", false
	}
	switch next.State {
	case AgreementSigned:
		return EventAgreementSigned, true
	case AgreementTerminated:
		return EventAgreementTerminated, true
	case AgreementExpired:
		return EventAgreementExpired, true
	}
	return "", false
}

// chargeEvent decides the event of a charge written as next, over prev
// (nil: created). An unchanged state appends nothing. CLOSING has no event:
// it is papayd's own wait while a close may still race a deduction, and it
// ends in charge.closed or charge.succeeded, each of which has one.
func chargeEvent(prev *Charge, next Charge) (EventType, bool) {
	if prev == nil {
		return EventChargeCreated, true
	}
	if prev.State == next.State {
		return "", false
	}
	switch next.State {
	case ChargeProcessing:
		return EventChargeProcessing, true
	case ChargeSucceeded:
		return EventChargeSucceeded, true
	case ChargeFailed:
		return EventChargeFailed, true
	case ChargeClosed:
		return EventChargeClosed, true
	}
	return "", false
}

// outboxTx is the Tx every use case writes through (Service.inTx): each
// write of an agreement, a charge or a refund that changes its state, and each
// anomaly, appends its event in the same transaction, with the record as
// stored after the write. Writing through it is the only way the domain
// writes these records, so no transition can forget its event.
//
// It also holds the log records its run of fn makes (logCommitted): the
// store may run fn more than once, and only the run that commits is told.
type outboxTx struct {
	Tx
	now  func() time.Time
	logs *[]txLog
}

// txLog is a log record held until its transaction commits.
type txLog struct {
	level slog.Level
	msg   string
	args  []any
}

func (t outboxTx) CreateAgreement(ctx context.Context, a Agreement) error {
	if err := t.Tx.CreateAgreement(ctx, a); err != nil {
		return err
	}
	return t.agreementChanged(ctx, nil, a.OutContractCode)
}

func (t outboxTx) UpdateAgreement(ctx context.Context, a Agreement) error {
	prev, err := t.Tx.AgreementByOutContractCode(ctx, a.OutContractCode)
	if err != nil {
		return err
	}
	if err := t.Tx.UpdateAgreement(ctx, a); err != nil {
		return err
	}
	if prev.State == a.State {
		return nil // no transition, no event: nothing to read back
	}
	return t.agreementChanged(ctx, &prev, a.OutContractCode)
}

// agreementChanged appends the event of the agreement just written, if its
// write is one: the snapshot is read back, so it is exactly what is stored.
func (t outboxTx) agreementChanged(ctx context.Context, prev *Agreement, code string) error {
	cur, err := t.Tx.AgreementByOutContractCode(ctx, code)
	if err != nil {
		return err
	}
	typ, ok := agreementEvent(prev, cur)
	if !ok {
		return nil
	}
	return t.AppendEvent(ctx, Event{Type: typ, CreateTime: t.now(), SubMchID: cur.SubMchID, Agreement: &cur})
}

func (t outboxTx) CreateCharge(ctx context.Context, c Charge) error {
	if err := t.Tx.CreateCharge(ctx, c); err != nil {
		return err
	}
	return t.chargeChanged(ctx, nil, c.OutTradeNo)
}

func (t outboxTx) UpdateCharge(ctx context.Context, c Charge) error {
	prev, err := t.Tx.ChargeByOutTradeNo(ctx, c.OutTradeNo)
	if err != nil {
		return err
	}
	if err := t.Tx.UpdateCharge(ctx, c); err != nil {
		return err
	}
	if prev.State == c.State {
		return nil // no transition, no event: nothing to read back
	}
	return t.chargeChanged(ctx, &prev, c.OutTradeNo)
}

// chargeChanged is agreementChanged for charges.
func (t outboxTx) chargeChanged(ctx context.Context, prev *Charge, no string) error {
	cur, err := t.Tx.ChargeByOutTradeNo(ctx, no)
	if err != nil {
		return err
	}
	typ, ok := chargeEvent(prev, cur)
	if !ok {
		return nil
	}
	return t.AppendEvent(ctx, Event{Type: typ, CreateTime: t.now(), SubMchID: cur.SubMchID, Charge: &cur})
}

func (t outboxTx) CreateRefund(ctx context.Context, r Refund) error {
	if err := t.Tx.CreateRefund(ctx, r); err != nil {
		return err
	}
	return t.refundChanged(ctx, nil, r.OutRefundNo)
}

func (t outboxTx) UpdateRefund(ctx context.Context, r Refund) error {
	prev, err := t.Tx.RefundByOutRefundNo(ctx, r.OutRefundNo)
	if err != nil {
		return err
	}
	if err := t.Tx.UpdateRefund(ctx, r); err != nil {
		return err
	}
	if prev.State == r.State {
		return nil // no transition, no event: nothing to read back
	}
	return t.refundChanged(ctx, &prev, r.OutRefundNo)
}

// refundChanged is agreementChanged for refunds.
func (t outboxTx) refundChanged(ctx context.Context, prev *Refund, no string) error {
	cur, err := t.Tx.RefundByOutRefundNo(ctx, no)
	if err != nil {
		return err
	}
	typ, ok := refundEvent(prev, cur)
	if !ok {
		return nil
	}
	return t.AppendEvent(ctx, Event{Type: typ, CreateTime: t.now(), SubMchID: cur.SubMchID, Refund: &cur})
}

// InsertAnomaly records a and appends anomaly.detected. The event belongs
// to the sub-merchant of the anomaly's charge; one about no charge (an
// agreement's re-check) has none, and only unrestricted keys see it.
func (t outboxTx) InsertAnomaly(ctx context.Context, a Anomaly) error {
	if err := t.Tx.InsertAnomaly(ctx, a); err != nil {
		return err
	}
	sub := ""
	if a.OutTradeNo != "" {
		c, err := t.Tx.ChargeByOutTradeNo(ctx, a.OutTradeNo)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		sub = c.SubMchID
	}
	return t.AppendEvent(ctx, Event{Type: EventAnomalyDetected, CreateTime: t.now(), SubMchID: sub, Anomaly: &a})
}

// inTx is store.InTx through outboxTx: every use case's transaction. The
// log records of fn's run that commits are written once it has committed;
// those of a run the store aborted (and ran again), or of a transaction
// that failed, are not.
func (s *Service) inTx(ctx context.Context, fn func(Tx) error) error {
	var logs []txLog
	err := s.store.InTx(ctx, func(tx Tx) error {
		logs = nil // a rerun starts over
		return fn(outboxTx{Tx: tx, now: s.clock.Now, logs: &logs})
	})
	if err != nil {
		return err
	}
	for _, l := range logs {
		s.log.Log(ctx, l.level, l.msg, l.args...)
	}
	return nil
}

// logCommitted logs msg once tx, a use case's transaction, commits; a tx
// of no use case's logs it at once.
func (s *Service) logCommitted(ctx context.Context, tx Tx, level slog.Level, msg string, args ...any) {
	if t, ok := tx.(outboxTx); ok && t.logs != nil {
		*t.logs = append(*t.logs, txLog{level: level, msg: msg, args: args})
		return
	}
	s.log.Log(ctx, level, msg, args...)
}
