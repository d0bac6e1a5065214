package service

import (
	"slices"
	"time"
)

// APIKey is a caller's credential as papayd records it. Its secret is
// never stored, only a hash of it.
type APIKey struct {
	ID        string
	Name      string
	Scopes    []Scope
	SubMchIDs []string // empty: every sub-merchant
	// RateLimit is the calls a second the key may make (a token bucket);
	// 0 means the deployment's default.
	RateLimit    float64
	CreateTime   time.Time
	ExpireTime   time.Time // zero: never
	LastUsedTime time.Time
	RevokeTime   time.Time // zero: not revoked
}

// Has reports whether the key grants scope s. ScopeAdmin grants every
// scope.
func (k APIKey) Has(s Scope) bool {
	return slices.Contains(k.Scopes, s) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Usable reports whether the key may authenticate at now: not revoked and
// not expired.
func (k APIKey) Usable(now time.Time) bool {
	return k.RevokeTime.IsZero() && (k.ExpireTime.IsZero() || now.Before(k.ExpireTime))
}

// Caller is the caller the key authenticates, from peer.
func (k APIKey) Caller(peer string) Caller {
	return Caller{KeyID: k.ID, Name: k.Name, SubMchIDs: slices.Clone(k.SubMchIDs), Peer: peer}
}
