package wechat

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// sequence answers with answers in turn, repeating the last.
func sequence(answers ...fakeAnswer) func(gotRequest) fakeAnswer {
	var n atomic.Int64
	return func(gotRequest) fakeAnswer {
		i := int(n.Add(1)) - 1
		return answers[min(i, len(answers)-1)]
	}
}

// sleepRecorder is a Config.Sleep that does not pause but keeps the
// pauses asked for.
type sleepRecorder struct {
	mu     sync.Mutex
	pauses []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.pauses = append(s.pauses, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.pauses...)
}

const txOK = `{"out_trade_no":"1217752501201407033233368018","transaction_id":"42","trade_state":"SUCCESS","amount":{"total":10000,"currency":"HKD"}}`

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	ok := fakeAnswer{Status: 200, Body: txOK}
	tests := []struct {
		name       string
		first      fakeAnswer
		wantStatus int // of the first record
	}{
		{"500 SYSTEM_ERROR", fakeAnswer{Status: 500, Body: `{"code":"SYSTEM_ERROR","message":"系统错误"}`}, 500},
		{"503 SERVICE_UNAVAILABLE", fakeAnswer{Status: 503, Body: `{"code":"SERVICE_UNAVAILABLE","message":"busy"}`}, 503},
		{"502 unsigned HTML", fakeAnswer{Status: 502, Sign: signNone, Body: `<html>bad gateway</html>`}, 502},
		{"429 RATELIMIT_EXCEEDED", fakeAnswer{Status: 429, Body: `{"code":"RATELIMIT_EXCEEDED","message":"slow"}`}, 429},
		{"429 RATE_LIMITED", fakeAnswer{Status: 429, Body: `{"code":"RATE_LIMITED","message":"slow"}`}, 429},
		{"403 FREQUENCY_LIMITED", fakeAnswer{Status: 403, Body: `{"code":"FREQUENCY_LIMITED","message":"slow"}`}, 403},
		{"202 accepted", fakeAnswer{Status: 202}, 202},
		{"connection reset", fakeAnswer{Reset: true}, 0},
		{"forged 200", fakeAnswer{Status: 200, Sign: signForged, Body: txOK}, 200},
		{"unsigned 200", fakeAnswer{Status: 200, Sign: signNone, Body: txOK}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, sequence(tt.first, ok))
			var s sleepRecorder
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.Sleep = s.sleep })
			got, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
			if err != nil {
				t.Fatalf("CreateTransaction: %v", err)
			}
			if got.TransactionID != "42" {
				t.Errorf("transaction %+v", got)
			}
			calls := rec.recorded()
			if len(calls) != 2 || calls[0].HTTPStatus != tt.wantStatus || calls[1].HTTPStatus != 200 || calls[1].Error != "" || calls[1].Code != "" {
				t.Fatalf("audit %+v, want the failed attempt then the success", calls)
			}
			if calls[0].Error == "" && calls[0].Code == "" && tt.wantStatus != 202 && tt.wantStatus != 502 {
				t.Errorf("first record %+v: want an error or a code", calls[0])
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			if !bytes.Equal(reqs[0].Body, reqs[1].Body) || !strings.Contains(string(reqs[0].Body), `"out_trade_no":"1217752501201407033233368018"`) {
				t.Errorf("the retry sent another body:\n%s\n%s", reqs[0].Body, reqs[1].Body)
			}
			if reqs[0].Header.Get("Authorization") == reqs[1].Header.Get("Authorization") {
				t.Error("the retry was not signed anew")
			}
			if p := s.got(); len(p) != 1 || p[0] < 0 || p[0] > DefaultRetryBase {
				t.Errorf("pauses %v, want one in [0, %v]", p, DefaultRetryBase)
			}
		})
	}
}

func TestNoRetryOfRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		code   string
	}{
		{400, "PARAM_ERROR"},
		{400, "INVALID_REQUEST"},
		{403, "NOT_ENOUGH"},
		{403, "CONTRACT_NOT_EXIST"},
		{401, "SIGN_ERROR"},
		{401, "SYSTEM_ERROR"}, // 401 is never retried, whatever the code
		{404, "ORDER_NOT_EXIST"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, sequence(fakeAnswer{Status: tt.status, Body: `{"code":"` + tt.code + `","message":"no"}`},
				fakeAnswer{Status: 200, Body: txOK}))
			var s sleepRecorder
			c, rec := newTestClient(t, f, func(cfg *Config) { cfg.Sleep = s.sleep })
			_, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
			var re *service.RemoteError
			if !errors.As(err, &re) || re.Code != tt.code || re.HTTPStatus != tt.status {
				t.Fatalf("err %v, want RemoteError %d %s", err, tt.status, tt.code)
			}
			if n, m := len(rec.recorded()), len(f.requests()); n != 1 || m != 1 {
				t.Errorf("%d records of %d requests, want 1", n, m)
			}
			if p := s.got(); len(p) != 0 {
				t.Errorf("paused %v", p)
			}
		})
	}
}

// TestRetryDeadline: retries stop at the call's deadline, whether it is
// Config.Timeout or the caller's context.
func TestRetryDeadline(t *testing.T) {
	t.Parallel()
	const deadline, delay = 300 * time.Millisecond, 60 * time.Millisecond
	tests := []struct {
		name     string
		timeout  time.Duration
		ctxLimit time.Duration
	}{
		{"Config.Timeout", deadline, 0},
		{"caller's context", 10 * time.Second, deadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Answers that never verify: every attempt's outcome is unknown.
			f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
				return fakeAnswer{Status: 200, Sign: signForged, Body: txOK, Delay: delay}
			})
			c, rec := newTestClient(t, f, func(cfg *Config) {
				cfg.Timeout, cfg.MaxAttempts, cfg.Sleep = tt.timeout, 100, nil // real pauses
				cfg.RetryBase, cfg.RetryCap = 10*time.Millisecond, 40*time.Millisecond
			})
			ctx := context.Background()
			if tt.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxLimit)
				defer cancel()
			}
			start := time.Now()
			_, err := c.CreateTransaction(ctx, fullTransactionRequest())
			elapsed := time.Since(start)
			if !errors.Is(err, service.ErrWeChatUnavailable) {
				t.Fatalf("err %v, want ErrWeChatUnavailable", err)
			}
			var re *service.RemoteError
			if errors.As(err, &re) {
				t.Errorf("an unknown outcome looks like a WeChat answer: %v", re)
			}
			n := len(rec.recorded())
			if maxN := int(deadline/delay) + 1; n < 2 || n > maxN {
				t.Errorf("%d attempts, want 2..%d within %v", n, maxN, deadline)
			}
			if elapsed > deadline+time.Second {
				t.Errorf("the call took %v, past its deadline %v", elapsed, deadline)
			}
			if !strings.Contains(err.Error(), "attempt(s)") {
				t.Errorf("err %v does not say how many attempts", err)
			}
		})
	}
}

func TestRetryAttemptsRunOut(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 500, Body: `{"code":"SYSTEM_ERROR","message":"系统错误"}`}
	})
	var s sleepRecorder
	c, rec := newTestClient(t, f, func(cfg *Config) {
		cfg.MaxAttempts, cfg.Sleep = 6, s.sleep
		cfg.RetryBase, cfg.RetryCap = 100*time.Millisecond, 250*time.Millisecond
	})
	err := terminate(c)
	var re *service.RemoteError
	if !errors.As(err, &re) || re.Code != "SYSTEM_ERROR" || errors.Is(err, service.ErrWeChatUnavailable) {
		t.Fatalf("err %v, want the last answer, a RemoteError SYSTEM_ERROR", err)
	}
	if n := len(rec.recorded()); n != 6 {
		t.Errorf("%d records, want 6", n)
	}
	p := s.got()
	if len(p) != 5 {
		t.Fatalf("pauses %v, want 5", p)
	}
	for i, d := range p {
		ceiling := min(100*time.Millisecond<<i, 250*time.Millisecond)
		if d < 0 || d > ceiling {
			t.Errorf("pause %d is %v, want [0, %v]", i+1, d, ceiling)
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	t.Parallel()
	c := &Client{retryBase: 100 * time.Millisecond, retryCap: 2 * time.Second}
	for n := 1; n <= 40; n++ {
		ceiling := min(c.retryBase<<min(n-1, 20), c.retryCap)
		lo, hi := ceiling, time.Duration(0)
		for range 500 {
			d := c.backoff(n)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want [0, %v]", n, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter: spread over the whole range, not a constant.
		if lo > ceiling/4 || hi < ceiling*3/4 {
			t.Errorf("backoff(%d) ranged %v..%v of [0, %v]", n, lo, hi, ceiling)
		}
	}
	huge := &Client{retryBase: time.Hour, retryCap: 2 * time.Hour}
	if d := huge.backoff(64); d < 0 || d > 2*time.Hour {
		t.Errorf("backoff overflowed: %v", d)
	}
	if d := (&Client{}).backoff(3); d != 0 {
		t.Errorf("zero base and cap: %v", d)
	}
}

// TestRefusalAfterUnknownOutcome: a deduction refused on a retry after an
// attempt whose outcome is unknown may have succeeded on that attempt.
func TestRefusalAfterUnknownOutcome(t *testing.T) {
	t.Parallel()
	used := fakeAnswer{Status: 400, Body: `{"code":"OUT_TRADE_NO_USED","message":"used"}`}
	tests := []struct {
		name    string
		first   fakeAnswer
		refusal bool // the refusal stands
	}{
		{"after a lost answer", fakeAnswer{Reset: true}, false},
		{"after an unverifiable answer", fakeAnswer{Status: 200, Sign: signForged, Body: txOK}, false},
		{"after SYSTEM_ERROR", fakeAnswer{Status: 500, Body: `{"code":"SYSTEM_ERROR","message":"m"}`}, false},
		{"after a rate limit", fakeAnswer{Status: 429, Body: `{"code":"RATELIMIT_EXCEEDED","message":"m"}`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWeChat(t, sequence(tt.first, used))
			c, rec := newTestClient(t, f, nil)
			_, err := c.CreateTransaction(context.Background(), fullTransactionRequest())
			var re *service.RemoteError
			if got := errors.As(err, &re); got != tt.refusal {
				t.Fatalf("err %v: refusal %v, want %v", err, got, tt.refusal)
			}
			if !tt.refusal && !errors.Is(err, service.ErrWeChatUnavailable) {
				t.Errorf("err %v, want ErrWeChatUnavailable", err)
			}
			if n := len(rec.recorded()); n != 2 {
				t.Errorf("%d records, want 2", n)
			}
		})
	}
	// Other calls keep WeChat's last word.
	f := newFakeWeChat(t, sequence(fakeAnswer{Reset: true}, fakeAnswer{Status: 403, Body: `{"code":"CONTRACT_NOT_EXIST","message":"m"}`}))
	c, _ := newTestClient(t, f, nil)
	var re *service.RemoteError
	if err := terminate(c); !errors.As(err, &re) || re.Code != "CONTRACT_NOT_EXIST" {
		t.Errorf("terminate: err %v, want the RemoteError", err)
	}
}

func TestRetryStopsWhenCallerCancels(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 503, Body: `{"code":"SERVICE_UNAVAILABLE","message":"m"}`}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	c, rec := newTestClient(t, f, func(cfg *Config) {
		cfg.MaxAttempts = 10
		cfg.Sleep = func(ctx context.Context, _ time.Duration) error {
			if calls.Add(1) == 2 {
				cancel()
			}
			return ctx.Err()
		}
	})
	err := c.TerminateContract(ctx, service.TerminateRequest{Merchant: testMerchant, ContractID: "C1", TerminationNote: "n"})
	var re *service.RemoteError
	if !errors.As(err, &re) || re.HTTPStatus != 503 {
		t.Fatalf("err %v, want the last answer", err)
	}
	if n := len(rec.recorded()); n != 2 {
		t.Errorf("%d records, want 2 (cancelled during the second pause)", n)
	}
}

func TestRetryConfig(t *testing.T) {
	t.Parallel()
	base := Config{MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey, PlatformCerts: []*x509.Certificate{platformCert}}
	c, err := NewClient(base, &fakeRecorder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxAttempts != DefaultMaxAttempts || c.retryBase != DefaultRetryBase || c.retryCap != DefaultRetryCap || c.sleep == nil {
		t.Errorf("defaults: %d %v %v", c.maxAttempts, c.retryBase, c.retryCap)
	}
	for _, edit := range []func(*Config){
		func(c *Config) { c.MaxAttempts = -1 },
		func(c *Config) { c.RetryBase = -time.Second },
		func(c *Config) { c.RetryCap = -time.Second },
	} {
		cfg := base
		edit(&cfg)
		if _, err := NewClient(cfg, &fakeRecorder{}, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
