package sandbox

import (
	"fmt"
	"net/http"
)

// Error codes the sandbox returns, with their HTTP statuses (see the package doc).
const (
	CodeParamError        = "PARAM_ERROR"         // 400
	CodeInvalidRequest    = "INVALID_REQUEST"     // 400
	CodeSignError         = "SIGN_ERROR"          // 401
	CodeNoAuth            = "NO_AUTH"             // 403
	CodeContractNotExist  = "CONTRACT_NOT_EXIST"  // 403
	CodeNotFound          = "NOT_FOUND"           // 404
	CodeNotEnough         = "NOT_ENOUGH"          // 403 deduction refused: balance insufficient
	CodeOutTradeNoUsed    = "OUT_TRADE_NO_USED"   // 400 out_trade_no reused with other parameters
	CodeOrderPaid         = "ORDER_PAID"          // 400 reverse of a paid order
	CodeOrderClosed       = "ORDER_CLOSED"        // 400 reverse or deduction of a closed order
	CodeOrderNotExist     = "ORDER_NOT_EXIST"     // 404 query of an unknown order
	CodeResourceNotExists = "RESOURCE_NOT_EXISTS" // 404 refund of an unknown order, query of an unknown refund
	CodeOutRefundNoUsed   = "OUT_REFUND_NO_USED"  // 400 out_refund_no reused with other parameters
	CodeFrequencyLimited  = "FREQUENCY_LIMITED"   // 429 refunds of one order less than a minute apart
	CodeRateLimited       = "RATELIMIT_EXCEEDED"  // 429 (fault injection)
	CodeSystemError       = "SYSTEM_ERROR"        // 500 (fault injection)
)

// Locations of a PARAM_ERROR's offending field.
const (
	locBody   = "body"
	locQuery  = "query"
	locPath   = "path"
	locHeader = "header"
)

// apiError is WeChat Pay's error body: {"code","message","detail"}.
type apiError struct {
	status  int
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Detail  *errorDetail `json:"detail,omitempty"`
}

// errorDetail names the offending field: a JSON pointer ("/openid") for body fields, the
// plain name for path and query parameters.
type errorDetail struct {
	Field           string           `json:"field,omitempty"`
	Value           any              `json:"value,omitempty"`
	Issue           string           `json:"issue,omitempty"`
	Location        string           `json:"location,omitempty"`
	SignInformation *signInformation `json:"sign_information,omitempty"`
}

// signInformation echoes what the server verified, to help a client find a signing bug.
type signInformation struct {
	Method               string `json:"method"`
	URL                  string `json:"url"`
	SignMessageLength    int    `json:"sign_message_length"`
	TruncatedSignMessage string `json:"truncated_sign_message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func paramError(field, location string, value any, issue string) *apiError {
	msg := "invalid request parameter"
	if field != "" {
		msg = fmt.Sprintf("invalid parameter %s: %s", field, issue)
	}
	return &apiError{status: http.StatusBadRequest, Code: CodeParamError, Message: msg,
		Detail: &errorDetail{Field: field, Value: value, Issue: issue, Location: location}}
}

func signError(issue string, info *signInformation) *apiError {
	return &apiError{status: http.StatusUnauthorized, Code: CodeSignError,
		Message: "signature verification failed: " + issue,
		Detail: &errorDetail{Field: "signature", Location: "authorization", Issue: issue,
			SignInformation: info}}
}

func invalidRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: msg}
}

func noAuth(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, Code: CodeNoAuth, Message: msg}
}

func contractNotExist() *apiError {
	return &apiError{status: http.StatusForbidden, Code: CodeContractNotExist,
		Message: "the contract does not exist or is already terminated"}
}

func notFound(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

func orderError(status int, code, msg string) *apiError {
	return &apiError{status: status, Code: code, Message: msg}
}

func systemError(msg string) *apiError {
	return &apiError{status: http.StatusInternalServerError, Code: CodeSystemError, Message: msg}
}

func rateLimited() *apiError {
	return &apiError{status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: "too many requests, please retry later"}
}
