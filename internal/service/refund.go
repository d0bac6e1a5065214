package service

import "time"

// RefundState is the local state of a refund.
type RefundState string

// The refund states. PENDING: recorded, and either not sent yet (waiting
// for the one-minute spacing of one charge's refunds), or its outcome is
// unknown (lost answer), or WeChat asked for a retry (NOT_ENOUGH,
// BIZERR_NEED_RETRY, SYSTEM_ERROR, FREQUENCY_LIMITED): the reconciler sends
// it (again, with the same out_refund_no) or queries it. PROCESSING: WeChat
// accepted it. ABNORMAL: the money could not reach the user; a person must
// act in the merchant platform, after which WeChat reports the outcome (not
// final). SUCCEEDED, CLOSED and FAILED (a final refusal, with WeChat's
// code) are final.
const (
	RefundPending    RefundState = "PENDING"
	RefundProcessing RefundState = "PROCESSING"
	RefundSucceeded  RefundState = "SUCCEEDED"
	RefundClosed     RefundState = "CLOSED"
	RefundAbnormal   RefundState = "ABNORMAL"
	RefundFailed     RefundState = "FAILED"
)

// RefundStates lists the refund states.
var RefundStates = []RefundState{RefundPending, RefundProcessing, RefundSucceeded, RefundClosed, RefundAbnormal, RefundFailed}

// Final reports whether no WeChat call can change the state any more.
func (s RefundState) Final() bool {
	return s == RefundSucceeded || s == RefundClosed || s == RefundFailed
}

// Counts reports whether a refund in state s counts against its charge's
// total: every refund but a FAILED or CLOSED one.
func (s RefundState) Counts() bool { return s != RefundFailed && s != RefundClosed }

// WeChat's refund statuses (query "status", notification
// "refund_status"). REFUNDCLOSE is an older spelling of CLOSED.
const (
	RefundStatusSuccess     = "SUCCESS"
	RefundStatusProcessing  = "PROCESSING"
	RefundStatusAbnormal    = "ABNORMAL"
	RefundStatusClosed      = "CLOSED"
	RefundStatusRefundClose = "REFUNDCLOSE"
)

// Refund limits WeChat Pay Global sets, checked locally before it is
// called.
const (
	// MaxRefundsPerCharge: at most 50 refunds per order.
	MaxRefundsPerCharge = 50
	// RefundWindow: no refund of an order older than one year (counted
	// from the charge's success time).
	RefundWindow = 365 * 24 * time.Hour
	// RefundSpacing: refunds of one order at least one minute apart (the
	// default of ReconcileConfig.RefundSpacing).
	RefundSpacing = time.Minute
)

// Refund is one refund of a SUCCEEDED charge, as papayd records it.
type Refund struct {
	OutRefundNo string
	// RefundID is WeChat's refund id ("" until WeChat answered).
	RefundID      string
	OutTradeNo    string
	TransactionID string
	// Merchant is the charge's: sub-merchant and app ids.
	Merchant
	Reason string
	// Amount is the refund, in the charge's currency; ChargeTotal is the
	// charge's total, sent as amount.total.
	Amount      Money
	ChargeTotal int64
	// NotifyURL is the notify_url the refund was (or will be) sent with:
	// every resend sends the refund's own parameters.
	NotifyURL string
	// PayerRefund, PayerCurrency and ExchangeRate: what the payer gets
	// back, in the payer's currency, at the charge's exchange rate (as
	// WeChat reports them).
	PayerRefund   int64
	PayerCurrency string
	ExchangeRate  ExchangeRate
	// Status, Channel, RecvAccount and FundSource are WeChat's words, kept
	// as given.
	Status      string
	Channel     string
	RecvAccount string
	FundSource  string
	State       RefundState
	// FailureCode and FailureMessage: WeChat's refusal of a FAILED refund.
	FailureCode    string
	FailureMessage string
	// LastError is the last retryable refusal or transport error of a
	// PENDING refund ("" otherwise).
	LastError   string
	SuccessTime time.Time
	CreateTime  time.Time
	UpdateTime  time.Time
	// Attempts counts the sends to WeChat; LastSendTime is the last one's
	// time (zero: never sent).
	Attempts     int
	LastSendTime time.Time
	// NextCheckTime is when the reconciler next sends (PENDING, never
	// answered) or queries it; zero when final. Checks counts the
	// reconciler's passes, for its backoff.
	NextCheckTime time.Time
	Checks        int
}

// RefundFilter selects refunds, newest first. Zero fields do not filter.
type RefundFilter struct {
	OutTradeNo string
	State      RefundState
	SubMchID   string
	// SubMchIDs, when not empty, limits the list to these sub-merchants
	// (the caller's); with SubMchID the two intersect.
	SubMchIDs []string
	PageSize  int
	PageToken string
}

// RefundInput is a request to refund a charge: by out_trade_no or by
// transaction_id (one of them).
type RefundInput struct {
	OutRefundNo   string
	OutTradeNo    string
	TransactionID string
	Amount        Money // the refund; its currency must be the charge's
	Reason        string
}

// RefundKey selects one refund: by out_refund_no, or by WeChat's refund
// id.
type RefundKey struct {
	OutRefundNo string
	RefundID    string
}

// RefundRequest is one refund call to WeChat (POST /v3/global/refunds).
type RefundRequest struct {
	Merchant
	TransactionID string // preferred by WeChat; OutTradeNo when empty
	OutTradeNo    string
	OutRefundNo   string
	Reason        string
	Refund        int64 // amount.refund
	Total         int64 // amount.total: the charge's total
	Currency      string
	NotifyURL     string
}

// RefundQuery selects a refund at WeChat: by RefundID, else OutRefundNo.
type RefundQuery struct {
	SubMchID    string
	RefundID    string
	OutRefundNo string
}

// RemoteRefund is a refund as WeChat reports it (the refund answer, a
// query, or the resource of a REFUND.* notification, whose refund_id,
// refund_status and user_received_account land in RefundID, Status and
// RecvAccount).
type RemoteRefund struct {
	SpMchID       string
	SubMchID      string
	RefundID      string
	OutRefundNo   string
	TransactionID string
	OutTradeNo    string
	Status        string // "" when the answer had none (a create answer)
	Channel       string
	RecvAccount   string
	FundSource    string
	SuccessTime   time.Time
	CreateTime    time.Time
	Refund        int64
	Total         int64 // 0 when the answer had none
	Currency      string
	PayerRefund   int64
	PayerTotal    int64
	PayerCurrency string
	ExchangeRate  ExchangeRate
}

// Event types of WeChat Pay refund notifications (papayd's own events
// are EventRefund*).
const (
	NotificationRefundSuccess  = "REFUND.SUCCESS"
	NotificationRefundClosed   = "REFUND.CLOSED"
	NotificationRefundAbnormal = "REFUND.ABNORMAL"
)

// The refund use cases (CreateRefund, GetRefund, LookupRefund,
// ListRefunds) are in refund_create.go and refund_lookup.go; the state
// machine in refund_state.go; the reconciler's part in
// refund_reconcile.go.
