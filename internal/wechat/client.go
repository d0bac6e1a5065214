package wechat

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/papayd/papayd/internal/service"
)

// Defaults of Config.
const (
	DefaultBaseURL = "https://apihk.mch.weixin.qq.com"
	DefaultTimeout = 10 * time.Second
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
	// the Authorization header only, never into a body.
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

	// Timeout is the deadline of one call: DefaultTimeout when zero.
	Timeout time.Duration
	// Transport replaces the default pooled transport (tests).
	Transport http.RoundTripper
	// Now is the clock of the audit records: time.Now when nil.
	Now func() time.Time
}

// Recorder stores the audit record of each call to WeChat Pay. internal/db
// implements it.
type Recorder interface {
	// RecordWeChatCall appends one record. Its error is logged, not returned
	// to the caller of the WeChat Pay call.
	RecordWeChatCall(ctx context.Context, c service.WeChatCall) error
}

// Client calls the WeChat Pay Global papay contract and deduction
// (transaction) endpoints. It is safe for concurrent use.
type Client struct {
	sdk     *core.Client
	base    string
	timeout time.Duration
	keys    *Keys
	rec     Recorder
	log     *slog.Logger
	now     func() time.Time
}

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
	case rec == nil:
		return nil, errors.New("wechat client: a Recorder is required")
	}
	keys, err := NewKeys(cfg.PlatformCerts, cfg.PublicKeyID, cfg.PublicKey)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	rt := cfg.Transport
	if rt == nil {
		rt = newTransport(timeout)
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
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{sdk: sdk, base: base, timeout: timeout, keys: keys, rec: rec, log: log, now: now}, nil
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

// do makes one signed call and returns the body of its verified 2xx
// answer. body nil means GET. Every call is recorded.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	start := c.now()
	rec := service.WeChatCall{Method: method, Path: path, Time: start}
	answer, err := c.exchange(ctx, method, u, body, &rec)
	rec.Duration = c.now().Sub(start)
	var re *service.RemoteError
	switch {
	case errors.As(err, &re):
		rec.Code = re.Code
		err = fmt.Errorf("%s %s: %w", method, path, err)
	case err != nil:
		rec.Error = err.Error()
		err = fmt.Errorf("wechatpay %s %s: %w: %w", method, path, service.ErrWeChatUnavailable, err)
		c.log.WarnContext(ctx, "wechatpay call outcome unknown", "method", method, "path", path,
			"http_status", rec.HTTPStatus, "request_id", rec.RequestID, "error", rec.Error)
	}
	c.record(ctx, rec)
	return answer, err
}

// exchange sends the request and sorts the outcome: the verified answer, a
// *service.RemoteError, or another error (outcome unknown).
func (c *Client) exchange(ctx context.Context, method, u string, body []byte, rec *service.WeChatCall) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		res *core.APIResult
		err error
	)
	if body == nil {
		res, err = c.sdk.Get(ctx, u)
	} else {
		res, err = c.sdk.Post(ctx, u, body)
	}
	var resp *http.Response
	if res != nil {
		resp = res.Response
	}
	if resp != nil {
		defer resp.Body.Close()
		rec.HTTPStatus = resp.StatusCode
		rec.RequestID = resp.Header.Get("Request-Id")
	}
	var apiErr *core.APIError
	switch {
	case errors.As(err, &apiErr):
		return nil, remoteError(apiErr.StatusCode, apiErr.Code, apiErr.Message, apiErr.Detail, rec.RequestID)
	case err != nil && resp != nil:
		// Unverified or unreadable. The SDK's message names the failed
		// check, never key material.
		return nil, fmt.Errorf("answer HTTP %d unusable: %w", resp.StatusCode, err)
	case err != nil:
		return nil, fmt.Errorf("no answer: %w", err)
	case resp.StatusCode == http.StatusAccepted:
		// Accepted, not processed: WeChat asks for the same call again.
		return nil, remoteError(resp.StatusCode, "", "", nil, rec.RequestID)
	}
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return answer, nil
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
			"request_id", call.RequestID, "error", err.Error())
	}
}
