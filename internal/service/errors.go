package service

import (
	"errors"
	"fmt"
)

// Kind classifies an error the way a caller must react to it. The transports
// map kinds to their own status codes in exactly one place each.
type Kind int

// The kinds. Append only: transports depend on the values.
const (
	KindInternal Kind = iota
	KindInvalid
	KindNotFound
	KindConflict
	KindFailedPrecondition
	KindUnavailable
	KindUnauthenticated
	KindPermissionDenied
	KindResourceExhausted
	KindOutOfRange
)

var kindNames = [...]string{"internal", "invalid", "not found", "conflict", "failed precondition", "unavailable", "unauthenticated", "permission denied", "resource exhausted", "out of range"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FieldViolation names one invalid request field and says what is wrong.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is the domain error. Reason is a stable, upper-case string that
// clients may branch on; Message is safe to show to a caller; Err is the
// cause, for logs only.
type Error struct {
	Kind       Kind
	Reason     string
	Message    string
	Violations []FieldViolation
	Err        error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is match a sentinel by kind and reason, so a sentinel
// re-created with another message or cause still matches.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason != "" && t.Kind == e.Kind && t.Reason == e.Reason
}

// Sentinels. Match them with errors.Is.
var (
	// ErrNotFound is what a Store returns for a missing row.
	ErrNotFound = &Error{Kind: KindNotFound, Reason: "NOT_FOUND", Message: "not found"}
	// ErrConflict is what a Store returns for a unique-key violation.
	ErrConflict = &Error{Kind: KindConflict, Reason: "ALREADY_EXISTS", Message: "already exists"}
	// ErrInvalidPageToken is what a Store returns for a page token it did not issue.
	ErrInvalidPageToken = &Error{Kind: KindInvalid, Reason: "INVALID_PAGE_TOKEN", Message: "invalid page token",
		Violations: []FieldViolation{{Field: "page_token", Description: "not a token this server issued"}}}

	ErrAgreementNotFound     = &Error{Kind: KindNotFound, Reason: "AGREEMENT_NOT_FOUND", Message: "agreement not found"}
	ErrAgreementNotSigned    = &Error{Kind: KindFailedPrecondition, Reason: "AGREEMENT_NOT_SIGNED", Message: "agreement is not signed"}
	ErrOutContractCodeReused = &Error{Kind: KindConflict, Reason: "OUT_CONTRACT_CODE_REUSED", Message: "out_contract_code is already used with other parameters"}
	ErrChargeNotFound        = &Error{Kind: KindNotFound, Reason: "CHARGE_NOT_FOUND", Message: "charge not found"}
	ErrOutTradeNoReused      = &Error{Kind: KindConflict, Reason: "OUT_TRADE_NO_REUSED", Message: "out_trade_no is already used with other parameters"}
	ErrOrderPaid             = &Error{Kind: KindFailedPrecondition, Reason: "ORDER_PAID", Message: "the charge is paid; it cannot be closed (refund it instead)"}
	ErrChargeFinal           = &Error{Kind: KindFailedPrecondition, Reason: "CHARGE_FINAL", Message: "the charge already reached a final state"}
	ErrRefundNotFound        = &Error{Kind: KindNotFound, Reason: "REFUND_NOT_FOUND", Message: "refund not found"}
	ErrOutRefundNoReused     = &Error{Kind: KindConflict, Reason: "OUT_REFUND_NO_REUSED", Message: "out_refund_no is already used with other parameters"}
	ErrRefundExceedsCharge   = &Error{Kind: KindFailedPrecondition, Reason: "REFUND_EXCEEDS_CHARGE", Message: "the refunds of this charge would exceed its total"}
	ErrChargeNotRefundable   = &Error{Kind: KindFailedPrecondition, Reason: "CHARGE_NOT_SUCCEEDED", Message: "only a SUCCEEDED charge can be refunded"}
	ErrRefundLimitReached    = &Error{Kind: KindFailedPrecondition, Reason: "REFUND_LIMIT_REACHED", Message: "a charge has at most 50 refunds"}
	ErrChargeTooOldToRefund  = &Error{Kind: KindFailedPrecondition, Reason: "CHARGE_TOO_OLD", Message: "a charge older than one year cannot be refunded"}
	ErrContractNotExist      = &Error{Kind: KindNotFound, Reason: "CONTRACT_NOT_EXIST", Message: "WeChat Pay does not know this contract"}
	ErrWeChatUnavailable     = &Error{Kind: KindUnavailable, Reason: "WECHATPAY_UNAVAILABLE", Message: "WeChat Pay is unavailable; retry later with the same parameters"}
	ErrWeChatRejected        = &Error{Kind: KindInvalid, Reason: "WECHATPAY_REJECTED", Message: "WeChat Pay rejected the request"}
	ErrWeChatAuth            = &Error{Kind: KindInternal, Reason: "WECHATPAY_AUTH_FAILED", Message: "WeChat Pay did not accept papayd's credentials"}

	// Authentication and authorisation of callers (API keys).
	ErrUnauthenticated   = &Error{Kind: KindUnauthenticated, Reason: "UNAUTHENTICATED", Message: "a valid API key is required (authorization: Bearer <key>)"}
	ErrPermissionDenied  = &Error{Kind: KindPermissionDenied, Reason: "PERMISSION_DENIED", Message: "the API key does not allow this call"}
	ErrCallerRateLimited = &Error{Kind: KindResourceExhausted, Reason: "RATE_LIMITED", Message: "the API key's call rate is exceeded; retry later"}

	// Notification errors, returned by the notification parser.
	ErrNotificationUnauthentic = &Error{Kind: KindUnauthenticated, Reason: "NOTIFICATION_UNAUTHENTIC", Message: "notification signature not verified"}
	ErrNotificationMalformed   = &Error{Kind: KindInvalid, Reason: "NOTIFICATION_MALFORMED", Message: "notification is malformed"}
)

// KindOf reports the kind of err: the kind of the first *Error in its chain,
// else KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// AsError returns the first *Error in err's chain, or an internal error that
// hides err's text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Reason: "INTERNAL", Message: "internal error", Err: err}
}

// invalid builds a KindInvalid error from violations.
func invalid(vs []FieldViolation) error {
	msg := "invalid request"
	if len(vs) > 0 {
		msg = fmt.Sprintf("invalid %s: %s", vs[0].Field, vs[0].Description)
		if len(vs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(vs)-1)
		}
	}
	return &Error{Kind: KindInvalid, Reason: "INVALID_ARGUMENT", Message: msg, Violations: vs}
}

// wrap returns a copy of sentinel with cause attached and, if msg is not
// empty, a more specific message.
func wrap(sentinel *Error, msg string, cause error) *Error {
	e := *sentinel
	if msg != "" {
		e.Message = msg
	}
	e.Err = cause
	return &e
}
