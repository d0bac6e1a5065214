package wechat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/service"
)

// callSpec is one call to WeChat Pay: what is sent, and how.
type callSpec struct {
	// sdk is c.sdk (answers verified by the SDK's validator with Keys) or
	// c.raw (answers not verified: the caller does it).
	sdk          *core.Client
	method, path string
	query        url.Values
	// body is sent as is by every attempt; nil means GET.
	body []byte
	// refusalAfterUnknown makes a business refusal that follows an attempt
	// of unknown outcome an unknown outcome too (see CreateTransaction).
	refusalAfterUnknown bool
}

// answer is a WeChat answer: its body (2xx only) and its headers.
type answer struct {
	body   []byte
	header http.Header
}

// call sends s, with retries (see Client), within one deadline. Every
// attempt is recorded. The error is a *service.RemoteError (wrapped with
// the method and path) for a WeChat error answer, else it wraps
// service.ErrWeChatUnavailable.
func (c *Client) call(ctx context.Context, s callSpec) (answer, error) {
	u := c.base + s.path
	if len(s.query) > 0 {
		u += "?" + s.query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		a        answer
		err      error
		attempts int
		// unknown: an earlier attempt may have taken effect at WeChat.
		unknown, refreshed bool
	)
	for n := 1; ; n++ {
		attempts++
		a, err = c.attempt(ctx, s, u, attempts)
		if err == nil {
			return a, nil
		}
		retry := retryable(err)
		if s.refusalAfterUnknown && unknown && !retry {
			var re *service.RemoteError
			if errors.As(err, &re) {
				// Not wrapped: a caller must not take it for a refusal.
				err = fmt.Errorf("an earlier attempt's outcome is unknown, then WeChat refused the same request (%v)", re)
			}
		}
		if !rateLimited(err) {
			unknown = true
		}
		if ctx.Err() != nil {
			break
		}
		// An answer signed by a key we do not know: maybe a new platform
		// certificate. Fetch it on demand, once, and try again at once.
		if !refreshed && errors.Is(err, errUnknownSerial) {
			if hook := c.onUnknownSerial.Load(); hook != nil {
				refreshed = true
				if (*hook)(ctx, a.header.Get("Wechatpay-Serial")) {
					n-- // this attempt does not count against MaxAttempts
					continue
				}
			}
		}
		if !retry || n >= c.maxAttempts {
			break
		}
		d := c.backoff(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
			break // the pause would outlast the deadline
		}
		c.log.InfoContext(ctx, "wechatpay call retried", "method", s.method, "path", s.path,
			"attempt", attempts, "pause", d, "error", err.Error())
		if c.sleep(ctx, d) != nil {
			break
		}
	}
	var re *service.RemoteError
	if errors.As(err, &re) {
		return a, fmt.Errorf("%s %s: %w", s.method, s.path, err)
	}
	return a, fmt.Errorf("wechatpay %s %s: %w: %d attempt(s), last: %w", s.method, s.path, service.ErrWeChatUnavailable, attempts, err)
}

// attempt sends s once and records it.
func (c *Client) attempt(ctx context.Context, s callSpec, u string, n int) (answer, error) {
	start := c.now()
	rec := service.WeChatCall{Method: s.method, Path: s.path, Time: start}
	a, err := c.exchange(ctx, s.sdk, s.method, u, s.body, &rec)
	rec.Duration = c.now().Sub(start)
	var re *service.RemoteError
	switch {
	case errors.As(err, &re):
		rec.Code = re.Code
	case err != nil:
		rec.Error = err.Error()
		c.log.WarnContext(ctx, "wechatpay call outcome unknown", "method", s.method, "path", s.path, "attempt", n,
			"http_status", rec.HTTPStatus, "wechatpay_request_id", rec.RequestID, "error", rec.Error)
	}
	c.record(ctx, rec)
	return a, err
}

// retryable reports whether an attempt's outcome is worth another try:
// anything but a WeChat answer (no answer, or one that does not verify or
// read: the outcome is unknown), or a WeChat answer that asks for a retry
// (service.RemoteError.Retryable), except a signature refusal.
func retryable(err error) bool {
	var re *service.RemoteError
	if !errors.As(err, &re) {
		return true
	}
	if re.HTTPStatus == http.StatusUnauthorized || re.Code == "SIGN_ERROR" {
		return false
	}
	return re.Retryable()
}

// rateLimited reports whether WeChat refused an attempt unprocessed for
// its rate: such an attempt had no effect.
func rateLimited(err error) bool {
	var re *service.RemoteError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code {
	case "RATELIMIT_EXCEEDED", "RATE_LIMITED", "FREQUENCY_LIMITED":
		return true
	}
	return re.HTTPStatus == http.StatusTooManyRequests
}

// backoff is the pause after the n-th attempt (n ≥ 1): uniformly random in
// [0, min(retryCap, retryBase·2^(n-1))].
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.retryBase
	for i := 1; i < n && ceiling < c.retryCap; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, c.retryCap)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// sleep is the default Config.Sleep.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// announceOnly is the validator of Client.raw: it validates nothing (the
// caller verifies the answer) and announces the serial of keys in the
// Wechatpay-Serial request header, as the verifying client does.
type announceOnly struct{ keys *Keys }

func (v announceOnly) Validate(context.Context, *http.Response) error { return nil }

func (v announceOnly) GetAcceptSerial(ctx context.Context) (string, error) {
	return v.keys.GetSerial(ctx)
}
