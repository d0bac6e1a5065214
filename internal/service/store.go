package service

import (
	"context"
	"time"
)

// Store is the durable record. internal/db implements it on SQLite.
type Store interface {
	AgreementReader
	ChargeReader
	RefundReader
	EventReader
	KeyStore
	// InTx runs fn in one write transaction: committed when fn returns nil,
	// rolled back otherwise (fn's error is returned as is). Write
	// transactions are serialised, so a read-modify-write inside fn is safe.
	// fn may run more than once (a store shared by replicas runs it again
	// on a fresh transaction when a concurrent one made it abort): it must
	// have no effect outside the transaction, and whatever it gathers in
	// its caller's variables must be set afresh on each run.
	InTx(ctx context.Context, fn func(Tx) error) error
	// LockKey locks key ("charge/"+out_trade_no, "contract/"+id,
	// "presign/"+code) across every process on the store, and returns its
	// unlock function, or ctx's error if ctx ends first (the key is then
	// not locked). The domain holds it across a WeChat call and the
	// transactions around it; it takes its in-process lock of the key
	// first, so one process waits for a key at most once. A store only one
	// process can open (SQLite, under the data directory's lock) needs no
	// more than that in-process lock.
	LockKey(ctx context.Context, key string) (unlock func(), err error)
	// ClaimDue claims the reconciler's work that is due at now and that no
	// other owner holds a lease on: every open intent, oldest first, and up
	// to limit due charges, agreements and refunds each, earliest first
	// (as DueCharges and the others). Each is leased to l.Owner until now +
	// l.TTL, so that replicas never work on one record at the same moment
	// and a replica that dies loses its claims when they expire. Records
	// leased to l.Owner itself are claimed again.
	ClaimDue(ctx context.Context, now time.Time, limit int, l Lease) (Due, error)
	// ReleaseClaims ends every lease of owner that ClaimDue took.
	ReleaseClaims(ctx context.Context, owner string) error
	// ClaimLease takes the lease called name for l.Owner until now + l.TTL
	// when nobody holds it, its holder's lease expired, or l.Owner holds it
	// already (a renewal), and reports whether l.Owner holds it now.
	ClaimLease(ctx context.Context, name string, now time.Time, l Lease) (bool, error)
	// ReleaseLease ends owner's lease called name; a lease owner does not
	// hold is left as it is.
	ReleaseLease(ctx context.Context, name, owner string) error
	// DueCharges returns up to limit charges whose NextCheckTime is set and
	// not after now, earliest first, by index (the cost follows the
	// scheduled charges: open ones and final ones awaiting a re-check).
	DueCharges(ctx context.Context, now time.Time, limit int) ([]Charge, error)
	// DueAgreements returns up to limit agreements whose NextCheckTime is
	// set and not after now, earliest first, by index.
	DueAgreements(ctx context.Context, now time.Time, limit int) ([]Agreement, error)
	// DueRefunds returns up to limit refunds whose NextCheckTime is set and
	// not after now, earliest first, by index.
	DueRefunds(ctx context.Context, now time.Time, limit int) ([]Refund, error)
	// OpenIntents returns the intents not yet resolved, oldest first.
	OpenIntents(ctx context.Context) ([]Intent, error)
	// EventsCommitted returns a channel closed by the next commit that
	// appends an event (take it before reading, then wait on it: no commit
	// is missed between the two).
	EventsCommitted() <-chan struct{}
	// PruneEvents deletes up to limit of the oldest events created before
	// t and returns how many it deleted. A cursor below the last pruned
	// sequence is ErrEventCursorExpired from then on.
	PruneEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// ListAuditEntries returns one page of the audit trail, newest first,
	// and the token of the next page ("" on the last). An unknown token is
	// ErrInvalidPageToken.
	ListAuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error)
	// RecordAuditEntry appends an audit entry of a call that changed
	// nothing, without waiting for its commit; a row that could not be
	// written is reported to failed. It must not be called inside InTx.
	RecordAuditEntry(ctx context.Context, e AuditEntry, failed func(error)) error
	WebhookReader
}

// Lease names who claims shared work, and for how long.
type Lease struct {
	Owner string        // the claiming replica (Service's Config.Replica)
	TTL   time.Duration // the claim expires this long after it is taken
}

// Due is the work one reconciliation pass claimed.
type Due struct {
	Intents    []Intent
	Charges    []Charge
	Agreements []Agreement
	Refunds    []Refund
}

// AgreementReader reads agreements.
type AgreementReader interface {
	// AgreementByOutContractCode returns ErrNotFound when there is none.
	AgreementByOutContractCode(ctx context.Context, outContractCode string) (Agreement, error)
	// AgreementByContractID returns ErrNotFound when there is none.
	AgreementByContractID(ctx context.Context, contractID string) (Agreement, error)
	// ListAgreements returns one page, newest first, and the token of the
	// next page ("" on the last). An unknown token is ErrInvalidPageToken.
	// A non-empty f.SubMchIDs limits the rows to those sub-merchants, and
	// the page token is bound to the set as to every other filter field.
	ListAgreements(ctx context.Context, f AgreementFilter) ([]Agreement, string, error)
}

// EventReader reads the outbox: the events appended with each change.
type EventReader interface {
	// ListEvents returns up to f.PageSize events with a sequence above
	// f.AfterSequence, in sequence order, of f.Types (all when empty) and
	// of f.SubMchID and f.SubMchIDs (all when empty). A reader is never
	// shown a sequence and later a lower one: only committed events are
	// listed, and they commit in sequence order. A positive AfterSequence
	// below the last pruned sequence is ErrEventCursorExpired.
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)
	// EventByID returns the event as appended; ErrNotFound when there is
	// none.
	EventByID(ctx context.Context, id string) (Event, error)
}

// ChargeReader reads charges.
type ChargeReader interface {
	// ChargeByOutTradeNo returns ErrNotFound when there is none.
	ChargeByOutTradeNo(ctx context.Context, outTradeNo string) (Charge, error)
	// ChargeByTransactionID returns ErrNotFound when there is none.
	ChargeByTransactionID(ctx context.Context, transactionID string) (Charge, error)
	// ListCharges returns one page, newest first, and the token of the next
	// page ("" on the last). An unknown token is ErrInvalidPageToken.
	// A non-empty f.SubMchIDs limits the rows to those sub-merchants, and
	// the page token is bound to the set as to every other filter field.
	ListCharges(ctx context.Context, f ChargeFilter) ([]Charge, string, error)
}

// RefundReader reads refunds.
type RefundReader interface {
	// RefundByOutRefundNo returns ErrNotFound when there is none.
	RefundByOutRefundNo(ctx context.Context, outRefundNo string) (Refund, error)
	// RefundByRefundID returns ErrNotFound when there is none.
	RefundByRefundID(ctx context.Context, refundID string) (Refund, error)
	// RefundsOfCharge returns every refund of the charge out_trade_no,
	// oldest first.
	RefundsOfCharge(ctx context.Context, outTradeNo string) ([]Refund, error)
	// ListRefunds returns one page, newest first, and the token of the
	// next page ("" on the last). An unknown token is ErrInvalidPageToken.
	// A non-empty f.SubMchIDs limits the rows to those sub-merchants, and
	// the page token is bound to the set as to every other filter field.
	ListRefunds(ctx context.Context, f RefundFilter) ([]Refund, string, error)
}

// Tx is the view of the store inside one transaction.
type Tx interface {
	AgreementReader
	ChargeReader
	RefundReader
	KeyWriter
	// CreateAgreement inserts a. ErrConflict when the out_contract_code, or
	// a non-empty contract id, is already recorded.
	CreateAgreement(ctx context.Context, a Agreement) error
	// UpdateAgreement overwrites the agreement with a.OutContractCode,
	// except the fields fixed at creation (plan, merchant, channel, the
	// presign request's client details, CreateTime), which it never changes.
	// ErrNotFound when there is none; ErrConflict when a.ContractID belongs
	// to another agreement.
	UpdateAgreement(ctx context.Context, a Agreement) error
	// DeleteAgreement removes a pending agreement that WeChat refused to
	// open a session for. ErrNotFound when there is none.
	DeleteAgreement(ctx context.Context, outContractCode string) error
	// NotificationRecorded reports whether the notification with key is
	// recorded.
	NotificationRecorded(ctx context.Context, key NotificationKey) (bool, error)
	// InsertNotification records a processed notification. ErrConflict when
	// its key (merchants and id) is already recorded.
	InsertNotification(ctx context.Context, n NotificationRecord) error
	// CreateCharge inserts c. ErrConflict when its out_trade_no, or a
	// non-empty transaction id, is already recorded.
	CreateCharge(ctx context.Context, c Charge) error
	// UpdateCharge overwrites the charge with c.OutTradeNo, except the
	// fields fixed at creation (contract, payer, merchant, amount, order
	// details, CreateTime), which it never changes; RefundedTotal is
	// written. ErrNotFound when
	// there is none; ErrConflict when c.TransactionID belongs to another.
	UpdateCharge(ctx context.Context, c Charge) error
	// CreateRefund inserts r. ErrConflict when its out_refund_no, or a
	// non-empty refund id, is already recorded.
	CreateRefund(ctx context.Context, r Refund) error
	// UpdateRefund overwrites the refund r.OutRefundNo, except the fields
	// fixed at creation (charge, merchant, amount, reason, notify URL,
	// ChargeTotal, CreateTime), which it never changes. ErrNotFound when
	// there is none; ErrConflict when r.RefundID belongs to another.
	UpdateRefund(ctx context.Context, r Refund) error
	// InsertAnomaly records a disagreement papayd will not resolve silently.
	InsertAnomaly(ctx context.Context, a Anomaly) error
	// CreateIntent records a WeChat call about to be sent and returns its
	// id. ErrConflict when an open intent of the same kind and key exists.
	CreateIntent(ctx context.Context, in Intent) (int64, error)
	// DeleteIntent marks an intent resolved. ErrNotFound when there is none.
	DeleteIntent(ctx context.Context, id int64) error
	// InsertAuditEntry appends an audit entry; it commits with the
	// transaction's effect.
	InsertAuditEntry(ctx context.Context, e AuditEntry) error
	// AppendEvent appends e to the outbox; it commits with the
	// transaction's effect. The store assigns e's ID ("evt_" and random
	// characters) and Sequence (rising in commit order) and ignores theirs.
	AppendEvent(ctx context.Context, e Event) error
	WebhookReader
	WebhookWriter
}

// IntentKind names a WeChat call that changes money or contracts and is
// not already made durable by the record it creates (a deduction's intent
// is its PENDING charge; a presign's is its PENDING agreement).
type IntentKind string

// The intents.
const (
	IntentTerminate IntentKind = "TERMINATE" // Key: contract id; Note: termination note
	IntentClose     IntentKind = "CLOSE"     // Key: out_trade_no
)

// Intent is a WeChat call recorded before it is sent, so that a crash
// between sending it and recording its outcome is resumed at start.
type Intent struct {
	ID         int64
	Kind       IntentKind
	Key        string
	Note       string
	CreateTime time.Time
}

// WeChatCall is the audit record of one call to WeChat Pay. It holds no
// secrets and no bodies.
type WeChatCall struct {
	Method     string
	Path       string
	HTTPStatus int    // 0 when no answer arrived
	Code       string // WeChat's error code, if any
	RequestID  string
	Duration   time.Duration
	Error      string // transport error, if any
	Time       time.Time
}

// KeyStore holds the API keys. Store has its reads, Tx its writes.
type KeyStore interface {
	// Keys returns every key recorded, revoked and expired ones included,
	// with their secret hashes, in id order.
	Keys(ctx context.Context) ([]StoredKey, error)
	// TouchKey records that key id was used at t; a later time never goes
	// back. It may return before the write commits (a lost write costs
	// only a stale LastUsedTime) and must not be called inside InTx. An
	// unknown id is no error.
	TouchKey(ctx context.Context, id string, t time.Time) error
}

// KeyWriter writes API keys inside a transaction.
type KeyWriter interface {
	// CreateKey inserts k. ErrConflict when its id is already recorded.
	CreateKey(ctx context.Context, k StoredKey) error
	// RevokeKey sets the key's RevokeTime to t, unless it is revoked
	// already (the first revocation stands), and returns the key.
	// ErrNotFound when there is none.
	RevokeKey(ctx context.Context, id string, t time.Time) (APIKey, error)
}

// StoredKey is an API key as the store records it: with the SHA-256 hash
// of its secret, which only the store and Authenticate ever see.
type StoredKey struct {
	APIKey
	Hash [32]byte
}

// WebhookReader reads webhook endpoints and deliveries.
type WebhookReader interface {
	// WebhookEndpoint returns the endpoint id, deleted or not, with its
	// secret. ErrNotFound when there is none.
	WebhookEndpoint(ctx context.Context, id string) (StoredWebhookEndpoint, error)
	// WebhookEndpoints returns every endpoint, deleted ones included, with
	// their secrets, in creation order.
	WebhookEndpoints(ctx context.Context) ([]StoredWebhookEndpoint, error)
	// ListWebhookDeliveries returns the deliveries f selects in event
	// sequence order (then endpoint id), at most f.PageSize (0: all).
	ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error)
}

// WebhookWriter writes webhook endpoints and deliveries inside a
// transaction.
type WebhookWriter interface {
	// CreateWebhookEndpoint inserts e. ErrConflict when its id is already
	// recorded.
	CreateWebhookEndpoint(ctx context.Context, e StoredWebhookEndpoint) error
	// UpdateWebhookEndpoint overwrites the state, disable reason, cursor
	// and update time of the endpoint e.ID; the other fields are fixed at
	// creation. ErrNotFound when there is none.
	UpdateWebhookEndpoint(ctx context.Context, e WebhookEndpoint) error
	// CreateWebhookDelivery inserts d (its ID is ignored) and returns its
	// id. ErrConflict when the endpoint has a delivery of the event already.
	CreateWebhookDelivery(ctx context.Context, d WebhookDelivery) (int64, error)
	// UpdateWebhookDelivery overwrites the state, attempts, times, last
	// status and last error of the delivery d.ID. ErrNotFound when there is
	// none.
	UpdateWebhookDelivery(ctx context.Context, d WebhookDelivery) error
}
