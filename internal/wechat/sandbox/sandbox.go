package sandbox

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxBodyBytes caps request bodies of the API.
const maxBodyBytes = 1 << 20

// Options configure a Sandbox. Only Credentials is required.
type Options struct {
	// Credentials are the keys and ids the sandbox trusts and signs with.
	Credentials *Credentials

	// Now is the clock (default time.Now); the sandbox uses it for signing timestamps,
	// the request timestamp window, session expiry, ids, operate_time and success_time.
	// The payer scenario delays (SLOW, USERPAYING) run on the real clock.
	Now func() time.Time

	// TimeScale multiplies the notification retry delays: 1 (the default) is WeChat's real
	// schedule; tests use e.g. 0.0001 so that 15 s becomes 1.5 ms. It does not scale the
	// payer scenario delays (PayerConfig.DelayMS, SettleAfterMS), which are real time.
	TimeScale float64

	// TerminationNotifyURL receives PAPAY.TERMINATE. In WeChat Pay it is configured on the
	// plan (template), not sent per request. Empty: termination notifications are dropped
	// (and logged).
	TerminationNotifyURL string

	// PlanTerminationNotifyURLs overrides TerminationNotifyURL per plan_id.
	PlanTerminationNotifyURLs map[int64]string

	// SubMchIDs are further sub-merchants the service provider may act for, besides
	// Credentials.SubMchID.
	SubMchIDs []string

	// HTTPClient delivers notifications. Default: no redirects followed and a timeout of
	// 5 s × TimeScale, at least 1 s (WeChat Pay waits about 5 s for an acknowledgement).
	HTTPClient *http.Client

	// Logger receives operational logs (default: discarded). Keys, signatures and
	// decrypted payloads are never logged.
	Logger *slog.Logger

	// UsePublicKey signs every response and notification under Wechatpay-Serial =
	// Credentials.PublicKeyID (WeChat Pay public-key mode). Without it the platform
	// certificate serial is used, except that a request whose own Wechatpay-Serial header
	// names the public key id gets its response signed in public-key mode (migration).
	UsePublicKey bool

	// SignPageBaseURL, if set, is the base URL ("http://127.0.0.1:8080") of the server that
	// mounts SignPageHandler: H5 and JSAPI sign_url and WEB show_code_url then point at its
	// signing page instead of WeChat's.
	SignPageBaseURL string
	// StateFile, if set, keeps the sandbox's state across restarts: New loads it (an
	// unreadable or corrupt file is an error, never a silent reset) and every change is
	// saved to it (see the package doc, "State file"). Empty: state lives in memory only.
	StateFile string
}

// Sandbox simulates the WeChat Pay Global papay API: contracts, deductions and refunds.
// It is safe for concurrent use. Close it to stop notification deliveries and pending
// settlements.
type Sandbox struct {
	creds             *Credentials
	merchantPublicKey *rsa.PublicKey
	now               func() time.Time
	scale             float64
	terminationURL    string
	planTermination   map[int64]string
	subMchIDs         map[string]bool
	client            *http.Client
	log               *slog.Logger
	usePublicKey      bool
	signPageBase      string // Options.SignPageBaseURL without a trailing slash

	api     http.Handler
	apiMux  *http.ServeMux
	control http.Handler

	ctx    context.Context // cancelled by Close: stops deliveries
	cancel context.CancelFunc
	wg     sync.WaitGroup

	platform platformCerts // the platform certificates; rotation swaps them atomically
	faults   faultState    // fault injection: its own leaf lock

	mu             sync.Mutex
	closed         bool
	sessions       map[string]*Session
	contracts      map[string]*Contract
	contractList   []*Contract             // contracts in signing order
	byCode         map[codeKey]string      // newest contract id per (sub_mchid, plan_id, out_contract_code)
	orders         map[orderKey]*Order     // the ledger
	byTransaction  map[string]*Order       // by transaction_id
	ledger         []*Order                // orders in creation order
	orderSeq       uint64                  // creation order of the ledger
	payers         map[string]*PayerConfig // configured payers by openid; balance is the remaining one
	refunds        map[refundKey]*Refund   // the refund ledger
	byRefundID     map[string]*Refund
	refundsOf      map[*Order][]*Refund // the refunds of each order, oldest first
	refundLedger   []*Refund            // refunds in creation order
	refundSeq      uint64
	refundRefusals map[refundKey]int // NOT_ENOUGH refusals so far, per out_refund_no
	deliveries     []Delivery
	inflight       int
	changed        chan struct{} // closed and replaced whenever deliveries or inflight change
	store          *stateStore   // nil without Options.StateFile
}

// codeKey identifies a merchant contract number.
type codeKey struct {
	subMchID        string
	planID          int64
	outContractCode string
}

// New returns a Sandbox with no sessions or contracts.
func New(opts Options) (*Sandbox, error) {
	if err := opts.Credentials.validate(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if opts.TimeScale < 0 {
		return nil, errors.New("sandbox: TimeScale must not be negative")
	}
	merchantKey, ok := opts.Credentials.MerchantCert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("sandbox: merchant certificate does not hold an RSA key")
	}
	s := &Sandbox{
		creds:             opts.Credentials,
		merchantPublicKey: merchantKey,
		now:               opts.Now,
		scale:             opts.TimeScale,
		terminationURL:    opts.TerminationNotifyURL,
		planTermination:   maps.Clone(opts.PlanTerminationNotifyURLs),
		subMchIDs:         map[string]bool{opts.Credentials.SubMchID: true},
		client:            opts.HTTPClient,
		log:               opts.Logger,
		usePublicKey:      opts.UsePublicKey,
		signPageBase:      strings.TrimRight(opts.SignPageBaseURL, "/"),
		sessions:          map[string]*Session{},
		contracts:         map[string]*Contract{},
		byCode:            map[codeKey]string{},
		orders:            map[orderKey]*Order{},
		byTransaction:     map[string]*Order{},
		payers:            map[string]*PayerConfig{},
		refunds:           map[refundKey]*Refund{},
		byRefundID:        map[string]*Refund{},
		refundsOf:         map[*Order][]*Refund{},
		refundRefusals:    map[refundKey]int{},
		changed:           make(chan struct{}),
	}
	for _, id := range opts.SubMchIDs {
		s.subMchIDs[id] = true
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.scale == 0 {
		s.scale = 1
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = &http.Client{
			Timeout: max(s.scaled(5*time.Second), time.Second),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is not an acknowledgement
			},
		}
	}
	s.platform.current.Store(&platformSet{certs: []PlatformCertificate{
		newPlatformCertificate(opts.Credentials.PlatformKey, opts.Credentials.PlatformCert)}})
	s.SetFaults(Faults{}) // seeds the random source
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.apiMux = s.newAPIMux()
	s.api = http.HandlerFunc(s.serveAPI)
	s.control = s.durableControl(s.newControlMux())
	if opts.StateFile != "" {
		if err := s.openState(opts.StateFile); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// APIHandler serves the WeChat Pay API (/v3/global/papay/..., /v3/global/refunds...).
// Mount it at the root of its own listener: request signatures cover the path.
func (s *Sandbox) APIHandler() http.Handler { return s.api }

// ControlHandler serves the unauthenticated control API (/sandbox/v1/...) through which
// tests and developers act as the WeChat user.
func (s *Sandbox) ControlHandler() http.Handler { return s.control }

// Credentials returns the credentials the sandbox was created with. They are never
// modified: after RotatePlatformCertificate, SigningCertificate and
// PlatformCertificates tell the current platform certificates.
func (s *Sandbox) Credentials() *Credentials { return s.creds }

// Close stops notification deliveries, including pending retries, and the settlement of
// USERPAYING orders and PROCESSING refunds, and waits for their goroutines. The handlers keep working; later
// notifications are dropped and later USERPAYING orders never settle. With
// Options.StateFile it then saves the state a last time, pending work included, for the
// next New to resume, and releases the file; later changes are not saved.
func (s *Sandbox) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.closeState()
}

func (s *Sandbox) newAPIMux() *http.ServeMux {
	const contracts = "/v3/global/papay/contracts"
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+contracts+"/miniprogram-pre-entrust-sign", s.handlePresign(ChannelMiniProgram))
	mux.HandleFunc("POST "+contracts+"/app-pre-entrust-sign", s.handlePresign(ChannelApp))
	mux.HandleFunc("POST "+contracts+"/h5-pre-entrust-sign", s.handlePresign(ChannelH5))
	mux.HandleFunc("POST "+contracts+"/jsapi-pre-entrust-sign", s.handlePresign(ChannelJSAPI))
	mux.HandleFunc("POST "+contracts+"/web-pre-entrust-sign", s.handlePresign(ChannelWeb))
	mux.HandleFunc("GET "+contracts+"/{contract_id}", s.handleQueryByID)
	mux.HandleFunc("GET "+contracts+"/out-contract-code/{out_contract_code}", s.handleQueryByCode)
	mux.HandleFunc("POST "+contracts+"/{contract_id}/terminate", s.handleTerminate)
	const transactions = "/v3/global/papay/transactions"
	mux.HandleFunc("POST "+transactions, s.handleDeduct)
	mux.HandleFunc("GET "+transactions+"/{transaction_id}", s.handleQueryByTransactionID)
	mux.HandleFunc("GET "+transactions+"/out-trade-no/{out_trade_no}", s.handleQueryByOutTradeNo)
	mux.HandleFunc("GET "+transactions+"/out_trade_no/{out_trade_no}", s.handleQueryByOutTradeNo)
	mux.HandleFunc("POST "+transactions+"/out-trade-no/{out_trade_no}/reverse", s.handleReverse)
	const refunds = "/v3/global/refunds"
	mux.HandleFunc("POST "+refunds, s.handleRefund)
	mux.HandleFunc("GET "+refunds, s.handleListRefunds)
	mux.HandleFunc("GET "+refunds+"/id/{refund_id}", s.handleQueryRefundByID)
	mux.HandleFunc("GET "+refunds+"/out-refund-no/{out_refund_no}", s.handleQueryRefundByNo)
	mux.HandleFunc("GET /v3/global/certificates", s.handleCertificates)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, notFound("no such API: "+r.Method+" "+r.URL.Path))
	})
	return mux
}

// serveAPI applies the injected faults, reads the body, authenticates, routes, and signs
// whatever the route wrote.
func (s *Sandbox) serveAPI(w http.ResponseWriter, r *http.Request) {
	latency, fault := s.apiFaults(r)
	if latency > 0 {
		// Not cut short by the client giving up: the request still executes, like a
		// slow WeChat Pay, and only its answer is lost.
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		}
	}
	buf := newBufferedResponse()
	switch fault {
	case FaultSystemError:
		writeAPIError(buf, systemError("system error (injected fault), please retry with the same parameters"))
	case FaultRateLimit:
		writeAPIError(buf, rateLimited())
	case FaultDropConnection:
		dropConnection(w)
		return
	default:
		s.routeAPI(buf, r)
		buf = s.durableAPI(r.Method, buf)
	}
	s.log.Debug("sandbox: api", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", buf.status), slog.String("fault", string(fault)))
	if fault == FaultLoseResponse {
		dropConnection(w)
		return
	}
	s.flushSigned(w, r, buf)
}

func (s *Sandbox) routeAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeAPIError(w, paramError("", locBody, nil, "the request body exceeds 1 MiB"))
			return
		}
		writeAPIError(w, paramError("", locBody, nil, "cannot read the request body"))
		return
	}
	if e := s.authenticate(r, body); e != nil {
		writeAPIError(w, e)
		return
	}
	if e := checkMediaTypes(r, body); e != nil {
		writeAPIError(w, e)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.apiMux.ServeHTTP(w, r)
}

// authorize checks that the service provider may act for sub_mchid with sp_appid.
func (s *Sandbox) authorize(subMchID, spAppID string) *apiError {
	if !s.subMchIDs[subMchID] {
		return noAuth(fmt.Sprintf("sub_mchid %s has no acceptance relationship with mchid %s",
			subMchID, s.creds.MchID))
	}
	if spAppID != s.creds.SPAppID {
		return noAuth(fmt.Sprintf("sp_appid %s is not bound to mchid %s", spAppID, s.creds.MchID))
	}
	return nil
}

// scaled multiplies a WeChat delay by TimeScale.
func (s *Sandbox) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.scale)
}

// terminationURLFor is where PAPAY.TERMINATE of a plan goes.
func (s *Sandbox) terminationURLFor(planID int64) string {
	if u := s.planTermination[planID]; u != "" {
		return u
	}
	return s.terminationURL
}
