package service

import (
	"crypto/rand"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds the defaults the use cases apply.
type Config struct {
	// Default merchant for requests that name none.
	SubMchID string
	SPAppID  string
	SubAppID string
	// NotifyURL is papayd's public /wechatpay/notify URL, passed to WeChat
	// as success_notify_url and notify_url.
	NotifyURL string
	// SessionTTL is the default lifetime of a signing session.
	SessionTTL time.Duration
	// MerchantCategoryCode is the default MCC of charges.
	MerchantCategoryCode string
	// MaxChargeAmount bounds one charge, in minor units, by currency; a
	// currency it does not name has DefaultMaxChargeAmount's bound.
	MaxChargeAmount map[string]int64
	// Reconcile configures the reconciler.
	Reconcile ReconcileConfig
	// Replica names this process among those sharing the store: the owner
	// of the leases it claims. Default: a random name per Service.
	Replica string
	// LeaseTTL is how long a claim on shared work (due records, a webhook
	// endpoint) lasts unless renewed: a replica that dies holds its claims
	// this long (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// WebhookEndpointsChanged, if not nil, is called after each commit
	// that created, enabled or deleted a webhook endpoint: the webhook
	// engine's cache of the endpoints to serve goes stale at once.
	WebhookEndpointsChanged func()
}

// DefaultLeaseTTL is the lifetime of a claim when none is configured.
const DefaultLeaseTTL = 2 * time.Minute

// NewReplicaName is a random replica name ("replica-" and 12 characters):
// the lease owner of a Service, or a webhook engine, given none.
func NewReplicaName() string {
	return "replica-" + rand.Text()[:12]
}

// DefaultSessionTTL is the signing-session lifetime when none is configured.
const DefaultSessionTTL = time.Hour

// Service implements the use cases.
type Service struct {
	cfg    Config
	store  Store
	wechat WeChat
	clock  Clock
	ids    IDs
	log    *slog.Logger
	// locks serialises the WeChat calls about one charge ("charge/" +
	// out_trade_no), one contract ("contract/" + contract id) or one
	// presign ("presign/" + out_contract_code) in this process, so
	// concurrent retries and the reconciler make one call; the store's
	// LockKey does it across processes (lock).
	locks keyedMutex
	// refusals bounds the audit entries of refused calls.
	refusals refusalSampler
	// keys is the in-memory set of API keys Authenticate reads (keys.go).
	keys keyCache
	// streams counts the open StreamEvents calls.
	streams atomic.Int64
	// ending is closed by EndStreams: the open streams end.
	ending    chan struct{}
	endingNow sync.Once
}

// New returns a Service. log may be nil.
func New(cfg Config, store Store, wechat WeChat, clock Clock, ids IDs, log *slog.Logger) *Service {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	cfg.Reconcile = cfg.Reconcile.withDefaults()
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Replica == "" {
		cfg.Replica = NewReplicaName()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, store: store, wechat: wechat, clock: clock, ids: ids, log: log, ending: make(chan struct{})}
}

// EndStreams ends the open StreamEvents calls, and any opened later, with
// ErrShuttingDown, so that a graceful stop does not wait for consumers
// that would follow forever.
func (s *Service) EndStreams() { s.endingNow.Do(func() { close(s.ending) }) }
