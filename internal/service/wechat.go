package service

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WeChat is what the domain needs from WeChat Pay Global. internal/wechat
// implements it over HTTP; the sandbox answers it in sandbox mode.
//
// Every method returns a *RemoteError when WeChat answered with an error
// body, and an error wrapping ErrWeChatUnavailable when the outcome is
// unknown (timeout, connection error, unverifiable answer).
type WeChat interface {
	// Presign starts a signing session on req.Channel.
	Presign(ctx context.Context, req PresignRequest) (PresignResult, error)
	// QueryContract reads a contract by contract id, or by out_contract_code
	// and plan id when q.ContractID is empty. A contract WeChat does not know
	// is a *RemoteError whose NotFound() is true.
	QueryContract(ctx context.Context, q ContractQuery) (RemoteContract, error)
	// TerminateContract ends a signed contract on the merchant's behalf.
	TerminateContract(ctx context.Context, req TerminateRequest) error
	// CreateTransaction deducts against a contract. WeChat answers the
	// transaction (usually SUCCESS) or refuses with a *RemoteError.
	CreateTransaction(ctx context.Context, req TransactionRequest) (RemoteTransaction, error)
	// QueryTransaction reads an order by transaction id or out_trade_no. An
	// order WeChat does not know is a *RemoteError whose NotFound() is true.
	QueryTransaction(ctx context.Context, q TransactionQuery) (RemoteTransaction, error)
	// ReverseTransaction closes an unpaid order. A paid one is a
	// *RemoteError with Code ORDER_PAID; a closed one ORDER_CLOSED.
	ReverseTransaction(ctx context.Context, subMchID, outTradeNo string) error
	// CreateRefund applies for a refund (POST /v3/global/refunds). The
	// answer means accepted; its Status may be empty. A refusal is a
	// *RemoteError (NOT_ENOUGH, BIZERR_NEED_RETRY, SYSTEM_ERROR and
	// FREQUENCY_LIMITED are to be retried with the same out_refund_no;
	// OUT_REFUND_NO_USED means the number was used with other parameters).
	CreateRefund(ctx context.Context, req RefundRequest) (RemoteRefund, error)
	// QueryRefund reads a refund by refund id, or by out_refund_no when
	// q.RefundID is empty. A refund WeChat does not know is a *RemoteError
	// whose NotFound() is true.
	QueryRefund(ctx context.Context, q RefundQuery) (RemoteRefund, error)
}

// Merchant names the sub-merchant and the app ids a call is made for.
type Merchant struct {
	SubMchID string
	SPAppID  string
	SubAppID string
}

// PresignRequest is one pre-sign call.
type PresignRequest struct {
	Merchant
	Channel          Channel
	PlanID           int64
	OutContractCode  string
	OpenID           string
	UserDisplayName  string
	SuccessNotifyURL string
	UserClientIP     string
	ReturnURL        string
	ReturnAppID      string
	ExpireTime       time.Time
}

// PresignResult is WeChat's answer: SessionID for the mini program and APP,
// SignURL for H5 and JSAPI, ShowCodeURL for WEB.
type PresignResult struct {
	SessionID   string
	SignURL     string
	ShowCodeURL string
}

// ContractQuery selects a contract.
type ContractQuery struct {
	Merchant
	ContractID      string
	OutContractCode string
	PlanID          int64
}

// RemoteContract is a contract as WeChat reports it.
type RemoteContract struct {
	ContractID      string
	OutContractCode string
	PlanID          int64
	OpenID          string
	UserDisplayName string
	State           string // SIGNED, TERMINATED (others are kept as given)
	SignedTime      time.Time
	TerminatedTime  time.Time
	TerminationMode TerminationMode
	TerminationNote string
}

// TerminateRequest ends a contract.
type TerminateRequest struct {
	Merchant
	ContractID      string
	TerminationNote string
}

// RemoteError is WeChat's error answer.
type RemoteError struct {
	HTTPStatus int
	Code       string // e.g. PARAM_ERROR, CONTRACT_NOT_EXIST
	Message    string
	Field      string // detail.field, when WeChat names one
	RequestID  string
}

func (e *RemoteError) Error() string {
	s := fmt.Sprintf("wechatpay: HTTP %d %s: %s", e.HTTPStatus, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.RequestID != "" {
		s += " request-id " + e.RequestID
	}
	return s
}

// Retryable reports whether the same request may succeed later: 5xx, 429,
// SYSTEM_ERROR and friends. Business refusals are not retryable.
func (e *RemoteError) Retryable() bool {
	switch e.Code {
	case "SYSTEM_ERROR", "SERVICE_UNAVAILABLE", "RATELIMIT_EXCEEDED", "RATE_LIMITED", "FREQUENCY_LIMITED", "BIZERR_NEED_RETRY":
		return true
	}
	return e.HTTPStatus >= 500 || e.HTTPStatus == 429 || e.HTTPStatus == 202
}

// NotFound reports whether WeChat says the object does not exist.
func (e *RemoteError) NotFound() bool {
	switch e.Code {
	case "NOT_FOUND", "ORDER_NOT_EXIST", "CONTRACT_NOT_EXIST", "RESOURCE_NOT_EXISTS":
		return true
	}
	return e.HTTPStatus == 404
}

// fromRemote turns an error from a WeChat call into a domain error.
func fromRemote(op string, err error) error {
	var re *RemoteError
	if !errors.As(err, &re) {
		if errors.Is(err, ErrWeChatUnavailable) {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s: %w", op, wrap(ErrWeChatUnavailable, "", err))
	}
	switch {
	case re.Retryable():
		return fmt.Errorf("%s: %w", op, wrap(ErrWeChatUnavailable, "", err))
	case re.HTTPStatus == 401 || re.Code == "SIGN_ERROR":
		return fmt.Errorf("%s: %w", op, wrap(ErrWeChatAuth, "", err))
	case re.Code == "CONTRACT_NOT_EXIST":
		return fmt.Errorf("%s: %w", op, wrap(ErrContractNotExist, "", err))
	}
	e := &Error{Kind: KindInvalid, Reason: re.Code, Message: "WeChat Pay: " + re.Message, Err: err}
	if e.Reason == "" {
		e.Reason = ErrWeChatRejected.Reason
	}
	switch {
	case re.HTTPStatus == 403:
		e.Kind = KindPermissionDenied
	case re.NotFound():
		e.Kind = KindNotFound
	case re.HTTPStatus == 409:
		e.Kind = KindConflict
	}
	if re.Field != "" {
		e.Violations = []FieldViolation{{Field: re.Field, Description: re.Message}}
	}
	return fmt.Errorf("%s: %w", op, e)
}
