package wechat

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

const (
	// certificatesPath is the Global platform-certificate list (the SDK's
	// downloader only knows the mainland /v3/certificates).
	certificatesPath = "/v3/global/certificates"

	// DefaultRefreshInterval is the default, and the longest, interval of
	// CertRefresher.Run: WeChat asks for a poll at least every 12 hours.
	DefaultRefreshInterval = 12 * time.Hour
	// DefaultMinOnDemandGap is the default least time from the end of one
	// on-demand download to the start of the next.
	DefaultMinOnDemandGap = time.Minute

	// firstRetryAfterFailure is Run's first pause after a failed refresh;
	// it doubles with each failure, up to the interval.
	firstRetryAfterFailure = time.Minute
	// maxListedCertificates bounds the list; WeChat lists one or two.
	maxListedCertificates = 32
	// maxSerialLen bounds a serial worth an on-demand download.
	maxSerialLen = 128
)

// RefresherOptions configures a CertRefresher; the zero value is the
// defaults.
type RefresherOptions struct {
	// Interval is Run's pause between refreshes: DefaultRefreshInterval
	// when zero, negative or longer.
	Interval time.Duration
	// MinOnDemandGap is the least time from the end of one on-demand
	// download (OnUnknownSerial) to the start of the next:
	// DefaultMinOnDemandGap when zero or negative.
	MinOnDemandGap time.Duration
	// Logger receives refresh outcomes: the Client's logger when nil.
	Logger *slog.Logger
	// Now is the clock of certificate validity, of the download answer's
	// timestamp and of the on-demand rate limit: time.Now when nil.
	Now func() time.Time
}

// CertRefresher keeps a Client's platform certificates current from
// GET /v3/global/certificates. It is safe for concurrent use and starts no
// goroutine of its own: run Run in one.
//
// A download is published only whole: every listed certificate must
// decrypt with the APIv3 key (AEAD_AES_256_GCM, 12-byte nonce), be a PEM
// X.509 certificate with an RSA key, and carry the serial its serial_no
// names; the answer's signature must verify (below). Any failure keeps the
// current set. Of the listed certificates, exactly those valid now are
// published (through Keys.SetCertificates, so a configured WeChat Pay
// public key stays): WeChat lists the old and the new certificate during a
// rotation, so a certificate it no longer lists is retired at once rather
// than kept for a grace period; a listed one not yet valid is published
// by the first refresh after it becomes valid. A list with no certificate
// valid now is a failure.
//
// Trust. The answer's signature is verified with the key its
// Wechatpay-Serial names among the keys already known, or else among the
// downloaded certificates that are valid now. The second case is the
// bootstrap (a first start without a configured certificate,
// Config.DownloadCertificates) and the rotation (an answer signed by the
// certificate being introduced, which is exactly when an on-demand
// download happens): there the APIv3 key, which only the merchant and
// WeChat hold, is what authenticates the certificates, and the signature
// shows that the answer is consistent with them. An answer whose serial
// names neither, or whose signature does not verify, is refused.
//
// NewCertRefresher makes the Client consult OnUnknownSerial when an answer
// names an unknown serial; hand OnUnknownSerial to
// NotificationParser.SetUnknownSerialHook for notifications.
type CertRefresher struct {
	c        *Client
	apiV3Key []byte
	interval time.Duration
	gap      time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu           sync.Mutex
	flight       *refreshFlight // the download under way, if any
	lastOnDemand time.Time      // end of the last on-demand download
}

// refreshFlight is one download; done closes when err is set.
type refreshFlight struct {
	done chan struct{}
	err  error
}

// NewCertRefresher returns a refresher of c's keys that decrypts with the
// 32-byte APIv3 key (a key of another length makes every Refresh fail). It
// installs OnUnknownSerial as c's on-demand hook.
func NewCertRefresher(c *Client, apiV3Key []byte, opts RefresherOptions) *CertRefresher {
	r := &CertRefresher{
		c: c, apiV3Key: bytes.Clone(apiV3Key),
		interval: opts.Interval, gap: opts.MinOnDemandGap, log: opts.Logger, now: opts.Now,
	}
	if r.interval <= 0 || r.interval > DefaultRefreshInterval {
		r.interval = DefaultRefreshInterval
	}
	if r.gap <= 0 {
		r.gap = DefaultMinOnDemandGap
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		if c != nil {
			r.log = c.log
		} else {
			r.log = slog.New(slog.DiscardHandler)
		}
	}
	if c != nil {
		hook := serialHook(r.OnUnknownSerial)
		c.onUnknownSerial.Store(&hook)
	}
	return r
}

// Refresh downloads, checks and publishes the platform certificates once;
// on any error the current set is kept. If a download is already under
// way it waits for that one instead.
func (r *CertRefresher) Refresh(ctx context.Context) error {
	r.mu.Lock()
	if f := r.flight; f != nil {
		r.mu.Unlock()
		return r.wait(ctx, f)
	}
	f := r.start()
	r.mu.Unlock()
	return r.fly(ctx, f, nil)
}

// Run refreshes now, then every Interval until ctx ends; it returns then.
// After a failure it tries again sooner: after a minute, doubling up to
// the interval. Failures are logged; the current set stays in use.
func (r *CertRefresher) Run(ctx context.Context) {
	var retry time.Duration
	for {
		wait := r.interval
		if err := r.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			retry = min(max(2*retry, firstRetryAfterFailure), r.interval)
			wait = retry
			r.log.ErrorContext(ctx, "wechatpay platform certificates not refreshed; the current set stays",
				"error", err.Error(), "next_try", wait)
		} else {
			retry = 0
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// OnUnknownSerial is the on-demand path, for a notification or an answer
// signed under serial: unless serial is known already, it downloads the
// certificates and reports whether serial is known afterwards.
//
// Callers are untrusted (anyone can post a notification naming any
// serial), so: concurrent callers share one download, whatever serials
// they name; the download runs detached from the caller's context, under
// its own deadline (the Client's Timeout), so a caller who hangs up stops
// waiting but does not cancel it; and at most one on-demand download
// starts per MinOnDemandGap, counted from the end of the last one, so a
// flood of made-up serials costs at most one download per gap, and each
// such download still publishes whatever WeChat lists (a real rotation
// included).
func (r *CertRefresher) OnUnknownSerial(ctx context.Context, serial string) bool {
	if r.c == nil || serial == "" || len(serial) > maxSerialLen {
		return false
	}
	if r.c.keys.key(serial) != nil {
		return true
	}
	r.mu.Lock()
	f := r.flight
	if f == nil {
		if !r.lastOnDemand.IsZero() && r.now().Sub(r.lastOnDemand) < r.gap {
			r.mu.Unlock()
			return false
		}
		f = r.start()
		r.mu.Unlock()
		r.log.InfoContext(ctx, "wechatpay platform certificates downloaded on demand", "serial", serial)
		go r.flyOnDemand(context.WithoutCancel(ctx), f, serial)
	} else {
		r.mu.Unlock()
	}
	_ = r.wait(ctx, f)
	return r.c.keys.key(serial) != nil
}

// flyOnDemand performs the on-demand download f under its own deadline
// and, once it has ended, starts the on-demand gap.
func (r *CertRefresher) flyOnDemand(ctx context.Context, f *refreshFlight, serial string) {
	ctx, cancel := context.WithTimeout(ctx, r.c.timeout)
	defer cancel()
	err := r.fly(ctx, f, func() { r.lastOnDemand = r.now() })
	if err != nil {
		r.log.WarnContext(ctx, "wechatpay on-demand certificate download failed", "serial", serial, "error", err.Error())
	}
}

// start registers a new download; r.mu is held.
func (r *CertRefresher) start() *refreshFlight {
	f := &refreshFlight{done: make(chan struct{})}
	r.flight = f
	return f
}

// fly performs the download f and ends it; ended, if not nil, runs with
// r.mu held as the flight is removed.
func (r *CertRefresher) fly(ctx context.Context, f *refreshFlight, ended func()) error {
	defer func() {
		r.mu.Lock()
		r.flight = nil
		if ended != nil {
			ended()
		}
		r.mu.Unlock()
		close(f.done)
	}()
	f.err = r.fetch(ctx)
	return f.err
}

// wait waits for the download f, or for ctx.
func (r *CertRefresher) wait(ctx context.Context, f *refreshFlight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch downloads, checks and publishes.
func (r *CertRefresher) fetch(ctx context.Context) error {
	if r.c == nil {
		return errors.New("wechat certificates: no client")
	}
	if len(r.apiV3Key) != 32 {
		return fmt.Errorf("wechat certificates: the APIv3 key must be 32 bytes, not %d", len(r.apiV3Key))
	}
	a, err := r.c.call(ctx, callSpec{sdk: r.c.raw, method: http.MethodGet, path: certificatesPath})
	if err != nil {
		return fmt.Errorf("wechat certificates: %w", err)
	}
	certs, err := r.certificates(a)
	if err != nil {
		return fmt.Errorf("wechat certificates: %w", err)
	}
	if err := r.c.keys.SetCertificates(certs); err != nil {
		return err
	}
	serials := make([]string, len(certs))
	for i, c := range certs {
		serials[i] = utils.GetCertificateSerialNumber(*c)
	}
	r.log.InfoContext(ctx, "wechatpay platform certificates published", "serials", serials)
	return nil
}

// certificateList is the answer of GET /v3/global/certificates.
type certificateList struct {
	Data []struct {
		SerialNo           string             `json:"serial_no"`
		EncryptCertificate *encryptedResource `json:"encrypt_certificate"`
	} `json:"data"`
}

// certificates checks a download's answer and returns the listed
// certificates valid now. Errors name no key material or plaintext.
func (r *CertRefresher) certificates(a answer) ([]*x509.Certificate, error) {
	var list certificateList
	if err := json.Unmarshal(a.body, &list); err != nil {
		return nil, errors.New("the answer is not a certificate list")
	}
	switch {
	case len(list.Data) == 0:
		return nil, errors.New("WeChat Pay lists no platform certificate")
	case len(list.Data) > maxListedCertificates:
		return nil, fmt.Errorf("WeChat Pay lists %d certificates, more than %d", len(list.Data), maxListedCertificates)
	}
	now := r.now()
	var valid []*x509.Certificate
	validBySerial := map[string]*rsa.PublicKey{}
	for i, d := range list.Data {
		e := d.EncryptCertificate
		if e == nil {
			return nil, fmt.Errorf("certificate %d is not encrypted", i)
		}
		plain, err := openAEAD(r.apiV3Key, e.Algorithm, e.Nonce, e.Ciphertext, e.AssociatedData)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", i, err)
		}
		block, _ := pem.Decode(plain)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate %d is not a PEM certificate", i)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse", i)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("certificate %d has no RSA public key", i)
		}
		serial := utils.GetCertificateSerialNumber(*cert)
		if !strings.EqualFold(serial, strings.TrimSpace(d.SerialNo)) {
			return nil, fmt.Errorf("certificate %d: serial_no %q is not its serial %s", i, clip(d.SerialNo, maxSerialLen), serial)
		}
		if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
			r.log.Info("wechatpay platform certificate listed but not valid now; not published", "serial", serial,
				"not_before", cert.NotBefore, "not_after", cert.NotAfter)
			continue
		}
		valid = append(valid, cert)
		validBySerial[serial] = pub
	}
	if err := r.verifyAnswer(a, validBySerial); err != nil {
		return nil, err
	}
	if len(valid) == 0 {
		return nil, errors.New("no listed certificate is valid now")
	}
	return valid, nil
}

// verifyAnswer checks the download answer's signature with the key its
// serial names: a known one, else a downloaded one (see CertRefresher).
func (r *CertRefresher) verifyAnswer(a answer, downloaded map[string]*rsa.PublicKey) error {
	var v [4]string
	for i, name := range [...]string{"Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"} {
		if v[i] = strings.TrimSpace(a.header.Get(name)); v[i] == "" {
			return errors.New("the answer is not signed: no " + name)
		}
	}
	serial, signature, ts, nonce := v[0], v[1], v[2], v[3]
	if t := strings.TrimSpace(a.header.Get("Wechatpay-Signature-Type")); t != "" && t != signatureType {
		return errors.New("the answer's signature type is not supported")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("the answer's timestamp is not an integer")
	}
	if skew := r.now().Sub(time.Unix(sec, 0)); skew > maxClockSkew || skew < -maxClockSkew {
		return errors.New("the answer's timestamp is stale")
	}
	pub := r.c.keys.key(serial)
	if pub == nil {
		pub = downloaded[serial]
	}
	if pub == nil {
		return fmt.Errorf("the answer is signed under serial %s, neither known nor listed", clip(serial, maxSerialLen))
	}
	if verifyWith(pub, ts+"\n"+nonce+"\n"+string(a.body)+"\n", signature) != nil {
		return errors.New("the answer's signature does not verify")
	}
	return nil
}
