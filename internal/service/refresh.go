package service

import "context"

// ErrRateLimited is what a WeChat implementation returns, without calling
// WeChat Pay, when an optional call (see WithOptionalCall) would exceed
// papayd's own limit on outbound calls to that endpoint. Calls not marked
// optional wait for the limit instead.
var ErrRateLimited = &Error{Kind: KindUnavailable, Reason: "WECHAT_RATE_LIMITED",
	Message: "papayd's limit on queries to WeChat Pay is reached; try again shortly"}

// optionalCallKey marks a context by WithOptionalCall.
type optionalCallKey struct{}

// WithOptionalCall marks the WeChat calls made under ctx as optional: the
// caller can do without them (a refresh a client asked for; the local
// record is a valid answer). A WeChat implementation may then refuse such a
// call with ErrRateLimited instead of waiting for its outbound limit, and
// may let concurrent optional queries of the same object share one call.
// Calls papayd needs (the reconciler's, a deduction's follow-up) are never
// marked: they wait for the limit and are never shared.
func WithOptionalCall(ctx context.Context) context.Context {
	return context.WithValue(ctx, optionalCallKey{}, true)
}

// OptionalCall reports whether ctx was marked by WithOptionalCall.
func OptionalCall(ctx context.Context) bool {
	v, _ := ctx.Value(optionalCallKey{}).(bool)
	return v
}

// Refresh says what became of a lookup's refresh.
type Refresh int

// The outcomes of a refresh. Append only: transports depend on the values.
const (
	// RefreshNotAsked: no refresh was asked for; the local record.
	RefreshNotAsked Refresh = iota
	// Refreshed: WeChat was asked, and its answer is in the record.
	Refreshed
	// RefreshRateLimited: WeChat was not asked, because papayd's outbound
	// limit was reached; the local record, possibly stale.
	RefreshRateLimited
)
