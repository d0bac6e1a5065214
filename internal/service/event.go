package service

import "time"

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
)

// EventTypes lists every event type, for validation and metrics.
var EventTypes = []EventType{
	EventAgreementCreated, EventAgreementSigned, EventAgreementTerminated, EventAgreementExpired,
	EventChargeCreated, EventChargeProcessing, EventChargeSucceeded, EventChargeFailed, EventChargeClosed,
	EventAnomalyDetected,
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
}

// EventFilter selects events after a cursor, in sequence order. Zero
// fields do not filter.
type EventFilter struct {
	AfterSequence uint64
	Types         []EventType
	SubMchIDs     []string // the caller's allowed set, intersected with SubMchID
	SubMchID      string
	PageSize      int
}
