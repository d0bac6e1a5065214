package wechat

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/papayd/papayd/internal/service"
)

// Defaults of Config.
const (
	DefaultBaseURL     = "https://apihk.mch.weixin.qq.com"
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 4
	DefaultRetryBase   = 100 * time.Millisecond
	DefaultRetryCap    = 2 * time.Second
)

const (
	// recordTimeout bounds writing one audit record, which happens even
	// when the caller's context is already done.
	recordTimeout = 5 * time.Second
	// maxAnswerBytes caps an answer body; WeChat's answers are tiny.
	maxAnswerBytes = 1 << 20
)

// Config configures a Client.
type Config struct {
	// BaseURL is scheme and host, no path: DefaultBaseURL when empty.
	BaseURL string
	// MchID is the service provider's merchant id (sp_mchid). It goes into
	// the Authorization header, and into the refund calls, which name it
	// (sp_mchid in the body, or the query string); never into a papay body.
	MchID string
	// MchCertSerial and MchPrivateKey are the merchant API certificate's
	// serial and private key; every request is signed with them.
	MchCertSerial string
	MchPrivateKey *rsa.PrivateKey

	// Verification keys, at least one: platform certificates (keyed by
	// their serial) and/or a WeChat Pay public key with its id
	// ("PUB_KEY_ID_..."). With both, an answer verifies with whichever key
	// its Wechatpay-Serial names.
	PlatformCerts []*x509.Certificate
	PublicKeyID   string
	PublicKey     *rsa.PublicKey

	// DownloadCertificates lets the configuration above hold no key at
	// all: the platform certificates come from a CertRefresher (its first
	// Refresh, or on demand at the first answer). Until then no answer
	// verifies.
	DownloadCertificates bool

	// Timeout is the deadline of one call, all its attempts included:
	// DefaultTimeout when zero. The caller's context may end it sooner.
	Timeout time.Duration

	// MaxAttempts is how many times one call is sent at most (see
	// Client): DefaultMaxAttempts when zero, 1 for no retries.
	MaxAttempts int
	// RetryBase and RetryCap shape the pause before a retry: a random
	// duration ("full jitter") between zero and RetryBase·2^(n-1), at most
	// RetryCap, after the n-th attempt. Defaults DefaultRetryBase and
	// DefaultRetryCap.
	RetryBase time.Duration
	RetryCap  time.Duration
	// Sleep pauses for d or until ctx ends, whichever is first, and then
	// returns ctx.Err() (tests replace it): a timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error

	// RootCAs are the certificate authorities the default transport trusts
	// for BaseURL (the system's, plus a TLS proxy's): the system's when nil.
	// Ignored with Transport.
	RootCAs *x509.CertPool
	// Transport replaces the default pooled transport (tests).
	Transport http.RoundTripper
	// Now is the clock of the audit records: time.Now when nil.
	Now func() time.Time

	// OrderQueryLimit and ContractQueryLimit cap this process's order
	// queries and contract queries, each endpoint its own bucket (defaults
	// DefaultQueryRate a second, DefaultQueryBurst at once). An optional
	// query (a client's refresh) beyond the limit is refused with
	// service.ErrRateLimited; any other query waits (see queryGate).
	OrderQueryLimit    Limit
	ContractQueryLimit Limit
	// RefundQueryLimit caps the refund queries the same way (defaults
	// DefaultQueryRate, DefaultQueryBurst; WeChat publishes 150 qps).
	RefundQueryLimit Limit
}

// Recorder stores the audit record of each call to WeChat Pay. internal/db
// implements it.
type Recorder interface {
	// RecordWeChatCall appends one record (it may return before the record
	// is durable). Its error is logged, not returned to the caller of the
	// WeChat Pay call.
	RecordWeChatCall(ctx context.Context, c service.WeChatCall) error
}

// Client calls the WeChat Pay Global papay contract and deduction
// (transaction) endpoints, and the Global refund endpoints. It is safe for
// concurrent use.
//
// Retries. One call is sent up to MaxAttempts times within its deadline
// (Config.Timeout, or the caller's context if that ends first), after a
// jittered exponential pause, when its outcome is worth another try: no
// answer (connection error, timeout of the attempt), HTTP 5xx, 429, 202,
// the codes SYSTEM_ERROR, SERVICE_UNAVAILABLE, RATELIMIT_EXCEEDED,
// RATE_LIMITED, FREQUENCY_LIMITED, BIZERR_NEED_RETRY, and an answer that
// fails verification or cannot be read. An unverifiable answer is an
// unknown outcome like a lost one, and every call is keyed
// (out_trade_no, out_contract_code, contract id, out_refund_no) so sending
// it again is safe. Every attempt sends the same body bytes (marshalled
// once), signed anew. Business refusals (other 4xx codes) and 401 / SIGN_ERROR are never
// retried. No retry is started when its pause would outlast the deadline.
// Each attempt is its own audit record. When the attempts run out the last
// outcome is returned: a *service.RemoteError for a WeChat answer, else an
// error wrapping service.ErrWeChatUnavailable.
//
// An answer signed under a serial the Keys do not know makes the client
// ask its CertRefresher (if any) for an on-demand download and, if the
// serial is known afterwards, send the call once more at once (beyond
// MaxAttempts, once per call).
type Client struct {
	sdk *core.Client
	// raw shares sdk's transport and signer but validates nothing: the
	// certificate download verifies its answer itself.
	raw         *core.Client
	base        string
	mchID       string
	timeout     time.Duration
	keys        *Keys
	rec         Recorder
	log         *slog.Logger
	now         func() time.Time
	maxAttempts int
	retryBase   time.Duration
	retryCap    time.Duration
	sleep       func(context.Context, time.Duration) error
	// onUnknownSerial is the CertRefresher's on-demand hook, if any.
	onUnknownSerial atomic.Pointer[serialHook]
	// orderGate, contractGate and refundGate limit and merge the queries.
	orderGate, contractGate, refundGate *queryGate
}

// serialHook fetches keys on demand and reports whether serial is known
// afterwards.
type serialHook = func(ctx context.Context, serial string) bool

var _ service.WeChat = (*Client)(nil)

// NewClient checks cfg and builds a Client. rec is required; a nil log
// discards.
func NewClient(cfg Config, rec Recorder, log *slog.Logger) (*Client, error) {
	base, err := baseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.MchID == "":
		return nil, errors.New("wechat client: MchID is required")
	case cfg.MchCertSerial == "":
		return nil, errors.New("wechat client: MchCertSerial is required")
	case cfg.MchPrivateKey == nil:
		return nil, errors.New("wechat client: MchPrivateKey is required")
	case cfg.Timeout < 0:
		return nil, errors.New("wechat client: Timeout must not be negative")
	case cfg.MaxAttempts < 0 || cfg.RetryBase < 0 || cfg.RetryCap < 0:
		return nil, errors.New("wechat client: MaxAttempts, RetryBase and RetryCap must not be negative")
	case rec == nil:
		return nil, errors.New("wechat client: a Recorder is required")
	}
	if err := errors.Join(cfg.OrderQueryLimit.check("OrderQueryLimit"), cfg.ContractQueryLimit.check("ContractQueryLimit"),
		cfg.RefundQueryLimit.check("RefundQueryLimit")); err != nil {
		return nil, err
	}
	keys, err := newKeys(cfg.PlatformCerts, cfg.PublicKeyID, cfg.PublicKey, cfg.DownloadCertificates)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	rt := cfg.Transport
	if rt == nil {
		rt = newTransport(timeout, cfg.RootCAs)
	}
	hc := &http.Client{
		Timeout:   timeout,
		Transport: wireTransport{next: rt},
		// A redirected request would carry a signature for another path.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	sdk, err := core.NewClient(context.Background(),
		option.WithMerchantCredential(cfg.MchID, cfg.MchCertSerial, cfg.MchPrivateKey),
		option.WithVerifier(keys),
		option.WithHTTPClient(hc),
	)
	if err != nil {
		return nil, fmt.Errorf("wechat client: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		sdk: sdk, raw: core.NewClientWithValidator(sdk, announceOnly{keys}),
		base: base, mchID: cfg.MchID, timeout: timeout, keys: keys, rec: rec, log: log, now: cfg.Now,
		maxAttempts: cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		retryBase:   cmp.Or(cfg.RetryBase, DefaultRetryBase),
		retryCap:    cmp.Or(cfg.RetryCap, DefaultRetryCap),
		sleep:       cfg.Sleep,

		orderGate:    newQueryGate(transactionsPath, cfg.OrderQueryLimit),
		contractGate: newQueryGate(contractsPath, cfg.ContractQueryLimit),
		refundGate:   newQueryGate(refundsPath, cfg.RefundQueryLimit),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleep
	}
	return c, nil
}

// Keys returns the verification keys, to share with a NotificationParser
// and a certificate refresher.
func (c *Client) Keys() *Keys { return c.keys }

func baseURL(s string) (string, error) {
	if s == "" {
		return DefaultBaseURL, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("wechat client: BaseURL %q is not scheme://host", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// do makes one call (with its retries) and returns the body of its
// verified 2xx answer. body nil means GET.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	a, err := c.call(ctx, callSpec{sdk: c.sdk, method: method, path: path, query: query, body: body})
	return a.body, err
}

// exchange sends one attempt and sorts the outcome: the verified answer, a
// *service.RemoteError, or another error (outcome unknown). The answer's
// headers are returned whenever an answer arrived.
func (c *Client) exchange(ctx context.Context, sdk *core.Client, method, u string, body []byte, rec *service.WeChatCall) (answer, error) {
	var (
		res *core.APIResult
		err error
	)
	if body == nil {
		res, err = sdk.Get(ctx, u)
	} else {
		res, err = sdk.Post(ctx, u, body)
	}
	var resp *http.Response
	if res != nil {
		resp = res.Response
	}
	var a answer
	if resp != nil {
		defer resp.Body.Close()
		rec.HTTPStatus = resp.StatusCode
		rec.RequestID = resp.Header.Get("Request-Id")
		a.header = resp.Header
	}
	var apiErr *core.APIError
	switch {
	case errors.As(err, &apiErr):
		return a, remoteError(apiErr.StatusCode, apiErr.Code, apiErr.Message, apiErr.Detail, rec.RequestID)
	case err != nil && resp != nil:
		// Unverified or unreadable. The SDK's message names the failed
		// check, never key material.
		return a, fmt.Errorf("answer HTTP %d unusable: %w", resp.StatusCode, err)
	case err != nil:
		return a, fmt.Errorf("no answer: %w", err)
	case resp.StatusCode == http.StatusAccepted:
		// Accepted, not processed: WeChat asks for the same call again.
		return a, remoteError(resp.StatusCode, "", "", nil, rec.RequestID)
	}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		return a, fmt.Errorf("read answer: %w", err)
	}
	return a, nil
}

// remoteError builds the domain's view of a WeChat error answer from its
// parts; the SDK's APIError text (which dumps every header) is not used.
func remoteError(status int, code, msg string, detail any, requestID string) *service.RemoteError {
	if msg == "" {
		msg = http.StatusText(status)
	}
	e := &service.RemoteError{HTTPStatus: status, Code: clip(code, 64), Message: clip(msg, 512), RequestID: clip(requestID, 128)}
	if d, ok := detail.(map[string]any); ok {
		if f, ok := d["field"].(string); ok {
			if len(f) > 0 && f[0] == '/' {
				f = f[1:]
			}
			e.Field = clip(f, 128)
		}
	}
	return e
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// record writes the audit record even if ctx is done; a failure is logged.
func (c *Client) record(ctx context.Context, call service.WeChatCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := c.rec.RecordWeChatCall(ctx, call); err != nil {
		c.log.ErrorContext(ctx, "wechatpay call not recorded", "method", call.Method, "path", call.Path,
			"wechatpay_request_id", call.RequestID, "error", err.Error())
	}
}
