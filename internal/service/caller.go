package service

import (
	"context"
	"slices"
)

// Scope is a permission an API key grants.
type Scope string

// The scopes. Adding one is one line here (and one in the RPC scope
// table of the transport that needs it).
const (
	ScopeAgreementsRead  Scope = "agreements:read"
	ScopeAgreementsWrite Scope = "agreements:write"
	ScopeChargesRead     Scope = "charges:read"
	ScopeChargesWrite    Scope = "charges:write"
	ScopeRefundsRead     Scope = "refunds:read"
	ScopeRefundsWrite    Scope = "refunds:write"
	ScopeEventsRead      Scope = "events:read"
	ScopeWebhooksWrite   Scope = "webhooks:write"
	ScopeAdmin           Scope = "admin"
)

// Scopes lists every scope, for validation and help texts.
var Scopes = []Scope{ScopeAgreementsRead, ScopeAgreementsWrite, ScopeChargesRead, ScopeChargesWrite,
	ScopeRefundsRead, ScopeRefundsWrite, ScopeEventsRead, ScopeWebhooksWrite, ScopeAdmin}

// Caller is who makes a call: the API key that authenticated it, or
// Anonymous when authentication is off (PAPAYD_AUTH=none).
type Caller struct {
	KeyID string // "" for Anonymous
	Name  string
	// SubMchIDs limits the caller to these sub-merchants; empty means all.
	SubMchIDs []string
	Peer      string // the caller's network address, for the audit
}

// Anonymous is the caller of a deployment without authentication: it may
// do everything.
var Anonymous = Caller{Name: "anonymous"}

// Sees reports whether the caller may see or act for subMchID.
func (c Caller) Sees(subMchID string) bool {
	return len(c.SubMchIDs) == 0 || slices.Contains(c.SubMchIDs, subMchID)
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, or Anonymous (the reconciler,
// callbacks, tests, PAPAYD_AUTH=none).
func CallerFrom(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	return Anonymous
}
