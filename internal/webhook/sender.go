package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// DefaultTimeout bounds one attempt: an answer later than this is a
// failure.
const DefaultTimeout = 15 * time.Second

// newClient returns the HTTP client of the attempts: it follows no
// redirect (a 3xx is the answer, and a failure) and gives up after
// timeout. Its transport keeps up to inFlight idle connections to each
// endpoint's host, so the attempts under way at once reuse their
// connections: http.DefaultTransport keeps 2 a host, and every attempt
// beyond those dialled (and, for https, handshook) a connection of its
// own, closed again after its answer.
func newClient(timeout time.Duration, inFlight int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(inFlight, http.DefaultMaxIdleConnsPerHost)
	return &http.Client{
		Timeout:       timeout,
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends body to endpoint as message id, signed with secret at now, and
// reports how it went. Only a 2xx is a success.
func post(ctx context.Context, client *http.Client, endpoint, secret, id string, body []byte, now time.Time) service.WebhookAttempt {
	a := service.WebhookAttempt{Time: now}
	sig, err := Sign(secret, id, now, body)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		a.Err = err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "papayd-webhooks")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		switch {
		case errors.As(err, &ue) && ue.Timeout():
			a.Err = "no answer within the timeout"
		case ue != nil:
			a.Err = ue.Err.Error() // without the URL, which the caller knows
		default:
			a.Err = err.Error()
		}
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	a.Status = resp.StatusCode
	if a.Status < 200 || a.Status > 299 {
		a.Err = fmt.Sprintf("HTTP %d", a.Status)
		if loc := resp.Header.Get("Location"); a.Status >= 300 && a.Status < 400 && loc != "" {
			a.Err += " (redirect not followed)"
		}
	}
	a.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	return a
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date; 0 when
// absent or malformed.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(service.MaxWebhookRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
