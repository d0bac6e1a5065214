package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	mtlspeer "github.com/papayd/papayd/internal/peer"
	"github.com/papayd/papayd/internal/service"
)

// Authenticator checks a bearer token. (*service.Service) implements it.
type Authenticator interface {
	// Authenticate returns the key token belongs to. It returns an error
	// wrapping service.ErrUnauthenticated for any bad token (unknown,
	// wrong secret, expired, revoked), another error when it cannot tell.
	Authenticate(ctx context.Context, token string) (service.APIKey, error)
}

// NameAuthenticator finds the key of a caller that a verified client
// certificate names (mTLS). (*service.Service) implements it.
type NameAuthenticator interface {
	// AuthenticateName returns the one usable key whose Name is name. It
	// returns an error wrapping service.ErrUnauthenticated when no usable
	// key has that name or more than one has, another error when it cannot
	// tell.
	AuthenticateName(ctx context.Context, name string) (service.APIKey, error)
}

// DefaultKeyRate is the calls a second of a key without its own rate limit,
// when Auth.DefaultRate is not set.
const DefaultKeyRate = 50

// authLogInterval is how often a refused call is logged, per reason: one
// sample, and the count of those not logged since.
const authLogInterval = 10 * time.Second

// Auth configures the authentication of callers by API key.
type Auth struct {
	// Keys checks bearer tokens. Nil turns authentication off
	// (PAPAYD_AUTH=none): every call is service.Anonymous.
	Keys Authenticator
	// Names, when not nil (PAPAYD_AUTH=mtls), authenticates a call that
	// comes without an authorization header by the identity of its verified
	// client certificate (internal/peer): as the key of that name. A call
	// with the header is authenticated by its key alone. Needs Keys.
	Names NameAuthenticator
	// DefaultRate is the calls a second of a key whose RateLimit is 0;
	// 0 means DefaultKeyRate.
	DefaultRate float64
	// Failed counts a refused call by reason (a metric); nil: not counted.
	Failed func(reason string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Refused records a refused call in the audit trail (ctx carries what
	// is known of the caller: the key id if any, the peer): every call
	// refused by authentication, and a mutating call refused as invalid or
	// forbidden. nil: not recorded. It must not block long.
	Refused func(ctx context.Context, method, outcome string)
}

// The reasons a call is refused, the label of Auth.Failed.
const (
	AuthMissing   = "missing"   // no authorization metadata (nor, with Names, a client certificate)
	AuthMalformed = "malformed" // not "Bearer <key>", or more than one
	AuthRejected  = "rejected"  // unknown key, wrong secret, expired or revoked; no one usable key of the certificate's name
	AuthUnusable  = "unusable"  // the authenticator returned a key expired or revoked
	AuthError     = "error"     // the authenticator could not tell (storage)
	AuthScope     = "scope"     // the key lacks the method's scope
	AuthLimited   = "rate_limited"
)

// AuthReasons lists the reasons, for metrics that export every label.
var AuthReasons = []string{AuthMissing, AuthMalformed, AuthRejected, AuthUnusable, AuthError, AuthScope, AuthLimited}

// authorizer authenticates each call, checks the scope its method needs
// (the scopes table) and the key's call rate, and puts the caller in the
// call's context. It runs inside the request id and metrics interceptors
// (refusals are counted and logged with the request id) and outside the
// logging one, which would log every refusal: it logs a sample of them.
type authorizer struct {
	Auth
	log     *slog.Logger
	sampler *Sampler

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by key id
}

func newAuthorizer(a Auth, log *slog.Logger) *authorizer {
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.DefaultRate <= 0 {
		a.DefaultRate = DefaultKeyRate
	}
	return &authorizer{Auth: a, log: log, sampler: NewSampler(authLogInterval, a.Now), limiters: map[string]*rate.Limiter{}}
}

func (a *authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	resp, err := handler(ctx, req)
	if err != nil && a.Refused != nil && mutating(info.FullMethod) {
		if st := status.Convert(err); st.Code() == codes.InvalidArgument || st.Code() == codes.PermissionDenied {
			a.Refused(ctx, shortMethod(info.FullMethod), reasonOf(st))
		}
	}
	return resp, err
}

// mutating reports whether method needs a write scope.
func mutating(method string) bool {
	scope, ok := ScopeOf(method)
	return ok && strings.HasSuffix(string(scope), ":write")
}

// shortMethod is the method's name without its service, as the audit
// trail names use cases.
func shortMethod(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

// reasonOf is the ErrorInfo reason of st, else its code's name.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return st.Code().String()
}

func (a *authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, callerStream{ss, ctx})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s callerStream) Context() context.Context { return s.ctx }

// authorize returns ctx with the caller of the call to method, or the
// status refusing it.
func (a *authorizer) authorize(ctx context.Context, method string) (context.Context, error) {
	if a.Keys == nil {
		anon := service.Anonymous
		anon.Peer = peerAddr(ctx)
		return service.WithCaller(ctx, anon), nil
	}
	if isPublic(method) {
		return ctx, nil
	}
	token, reason := bearer(ctx)
	var name string
	if reason == AuthMissing && a.Names != nil {
		if id, ok := mtlspeer.Identity(ctx); ok {
			name, reason = id, ""
		}
	}
	if reason != "" {
		return nil, a.refuse(ctx, method, reason, service.APIKey{}, errUnauthenticated)
	}
	key, err := a.authenticate(ctx, token, name)
	switch {
	case errors.Is(err, service.ErrUnauthenticated):
		return nil, a.refuse(ctx, method, AuthRejected, service.APIKey{}, errUnauthenticated)
	case err != nil:
		return nil, a.refuse(ctx, method, AuthError, service.APIKey{}, err)
	}
	now := a.Now()
	if !key.Usable(now) {
		return nil, a.refuse(ctx, method, AuthUnusable, key, errUnauthenticated)
	}
	if wait := a.reserve(key, now); wait > 0 {
		st := Status(service.ErrCallerRateLimited)
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
			st = d
		}
		return nil, a.refuse(ctx, method, AuthLimited, key, st.Err())
	}
	scope, ok := ScopeOf(method)
	if !ok || !key.Has(scope) {
		e := *service.ErrPermissionDenied
		e.Message = fmt.Sprintf("the API key does not have the scope %s this call needs", scope)
		if !ok {
			e.Message = "no scope is defined for " + method
		}
		return nil, a.refuse(ctx, method, AuthScope, key, &e)
	}
	return service.WithCaller(ctx, key.Caller(peerAddr(ctx))), nil
}

// authenticate is Names.AuthenticateName of the certificate's name when
// there is one, else Keys.Authenticate of token; its panic an error (this
// interceptor runs outside the one that recovers the handlers' panics).
func (a *authorizer) authenticate(ctx context.Context, token, name string) (key service.APIKey, err error) {
	defer func() {
		if p := recover(); p != nil {
			key, err = service.APIKey{}, fmt.Errorf("authenticate: panic: %v", p)
		}
	}()
	if name != "" {
		return a.Names.AuthenticateName(ctx, name)
	}
	return a.Keys.Authenticate(ctx, token)
}

// errUnauthenticated is the status of every call refused as
// unauthenticated: the caller sees the same whatever the reason (the log
// and the metric tell them apart). It is made once, so that refusing a
// guessed key builds no status.
var errUnauthenticated = Status(service.ErrUnauthenticated).Err()

// unauthenticatedOutcomes is the audit outcome of errUnauthenticated, by
// reason, made once.
var unauthenticatedOutcomes = func() map[string]string {
	m := map[string]string{}
	for _, r := range AuthReasons {
		m[r] = reasonOf(status.Convert(errUnauthenticated)) + " (" + r + ")"
	}
	return m
}()

// refuse counts and (sampled) logs a refused call, and returns its status:
// err as it is when it is a status already, else the one mapping of domain
// errors. The key's secret is never logged; its id is, when known, and so
// is the client certificate's identity.
func (a *authorizer) refuse(ctx context.Context, method, reason string, key service.APIKey, err error) error {
	keyID := key.ID
	if a.Failed != nil {
		a.Failed(reason)
	}
	cause := err
	st, ok := status.FromError(err)
	if !ok {
		st = Status(err)
		err = st.Err()
	}
	if a.Refused != nil {
		outcome, ok := "", false
		if err == errUnauthenticated {
			outcome, ok = unauthenticatedOutcomes[reason]
		}
		if !ok {
			outcome = reasonOf(st) + " (" + reason + ")"
		}
		rctx := service.WithCaller(ctx, service.Caller{KeyID: key.ID, Name: key.Name, Peer: peerAddr(ctx)})
		a.Refused(rctx, shortMethod(method), outcome)
	}
	if log, skipped := a.sampler.Sample(reason); log {
		attrs := []any{"method", method, "reason", reason, "code", st.Code().String(), "peer", peerAddr(ctx)}
		if keyID != "" {
			attrs = append(attrs, "key_id", keyID)
		}
		if id, ok := mtlspeer.Identity(ctx); ok {
			attrs = append(attrs, "certificate", id)
		}
		if reason == AuthError {
			attrs = append(attrs, "error", cause.Error())
		}
		attrs = append(attrs, "not_logged_since_last", skipped, "sampled_every", authLogInterval)
		a.log.WarnContext(ctx, "call refused", attrs...)
	}
	return err
}

// bearer returns the token of the call's "authorization: Bearer <token>"
// metadata, or why there is none.
func bearer(ctx context.Context) (token, reason string) {
	vs := metadata.ValueFromIncomingContext(ctx, "authorization") // copies the values only, not all the metadata
	switch {
	case len(vs) == 0:
		return "", AuthMissing
	case len(vs) > 1:
		return "", AuthMalformed
	}
	scheme, token, ok := strings.Cut(vs[0], " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", AuthMalformed
	}
	return token, ""
}

// reserve takes one call from key's token bucket, or returns how long the
// caller must wait for one.
func (a *authorizer) reserve(key service.APIKey, now time.Time) time.Duration {
	r := key.RateLimit
	if r <= 0 {
		r = a.DefaultRate
	}
	burst := max(1, int(math.Ceil(r)))
	a.mu.Lock()
	lim := a.limiters[key.ID]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(r), burst)
		a.limiters[key.ID] = lim
	} else if lim.Limit() != rate.Limit(r) {
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, burst)
	}
	a.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return wait
	}
	return 0
}

// peerAddr is the caller's network address: the gRPC peer's, or the HTTP
// client's for a REST call (the gateway sets it).
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// Sampler lets one event per key through per interval and counts the
// rest: the bounded logging of refusals (here) and of rejected callbacks
// (internal/web). Keys must be fixed names (reasons, outcomes), never
// values from a request, so that the map stays small.
type Sampler struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*sampled
}

type sampled struct {
	last    time.Time
	skipped int
}

// NewSampler returns a Sampler letting one event per key through every
// interval, on the clock now.
func NewSampler(every time.Duration, now func() time.Time) *Sampler {
	return &Sampler{every: every, now: now, keys: map[string]*sampled{}}
}

// Sample reports whether this event of key is to be logged and, if so, how
// many of key's events were not logged since the last one that was.
func (s *Sampler) Sample(key string) (log bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := s.keys[key]
	if k == nil {
		s.keys[key] = &sampled{last: now}
		return true, 0
	}
	if d := now.Sub(k.last); d >= 0 && d < s.every {
		k.skipped++
		return false, 0
	}
	skipped, k.last, k.skipped = k.skipped, now, 0
	return true, skipped
}
