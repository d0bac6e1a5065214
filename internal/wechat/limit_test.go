package wechat

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/papayd/papayd/internal/service"
)

var limitQuery = service.TransactionQuery{SubMchID: "10000097", TransactionID: "4200001136202112092809736426"}

// TestOptionalQueriesShareOneCall is hostile review 10, finding 9: 300
// concurrent refreshes of one order made 300 calls to WeChat.
func TestOptionalQueriesShareOneCall(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer {
		return fakeAnswer{Status: 200, Body: fullTransactionJSON, Delay: 100 * time.Millisecond}
	})
	c, _ := newTestClient(t, f, nil)
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			ctx := service.WithOptionalCall(context.Background())
			if i%3 == 0 {
				// Some callers hang up at once: the others still get the answer.
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			_, err := c.QueryTransaction(ctx, limitQuery)
			if i%3 != 0 && err != nil && !errors.Is(err, service.ErrRateLimited) {
				t.Errorf("query %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := len(f.requests()); n > 3 {
		t.Errorf("300 concurrent refreshes of one order made %d calls to WeChat, want at most 3", n)
	}
}

// TestOptionalQueriesBeyondLimitRefused: optional queries beyond the
// endpoint's limit are refused with service.ErrRateLimited without a call;
// other queries wait for the limit; each endpoint has its own bucket.
func TestOptionalQueriesBeyondLimitRefused(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(r gotRequest) fakeAnswer {
		if r.Path == contractsPath+"/W1" {
			return fakeAnswer{Status: 404, Body: `{"code":"CONTRACT_NOT_EXIST","message":"no"}`}
		}
		return fakeAnswer{Status: 200, Body: fullTransactionJSON}
	})
	c, _ := newTestClient(t, f, func(cfg *Config) {
		cfg.OrderQueryLimit = Limit{PerSecond: 10, Burst: 2}
		cfg.ContractQueryLimit = Limit{PerSecond: 10, Burst: 1}
	})
	opt := service.WithOptionalCall(context.Background())
	refused := 0
	for range 10 {
		_, err := c.QueryTransaction(opt, limitQuery)
		switch {
		case errors.Is(err, service.ErrRateLimited):
			refused++
		case err != nil:
			t.Fatalf("query: %v", err)
		}
	}
	if n := len(f.requests()); n > 3 || refused < 7 {
		t.Errorf("10 quick optional queries at 10/s burst 2: %d calls, %d refused; want at most 3 calls", n, refused)
	}
	// The contract endpoint has its own bucket.
	if _, err := c.QueryContract(opt, service.ContractQuery{ContractID: "W1"}); errors.Is(err, service.ErrRateLimited) {
		t.Errorf("the contract query is limited by the order queries: %v", err)
	}
	// A query papayd needs waits for a token instead.
	before := len(f.requests())
	start := time.Now()
	if _, err := c.QueryTransaction(context.Background(), limitQuery); err != nil {
		t.Fatalf("a waiting query: %v", err)
	}
	if len(f.requests()) != before+1 {
		t.Error("the waiting query made no call")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waited %v", d)
	}
	// ... within its context.
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	for range 5 {
		if _, err := c.QueryTransaction(ctx, limitQuery); err != nil {
			if !errors.Is(err, service.ErrWeChatUnavailable) || errors.Is(err, service.ErrRateLimited) {
				t.Errorf("a waiting query past its deadline: %v", err)
			}
			return
		}
	}
	t.Error("5 queries within 1 ms at 10/s never waited")
}

func TestQueryLimitConfig(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204} })
	for _, l := range []Limit{{Burst: -1}, {PerSecond: math.NaN()}, {PerSecond: math.Inf(1)}} {
		cfg := Config{BaseURL: f.srv.URL, MchID: testMchID, MchCertSerial: testMchSerial, MchPrivateKey: merchantKey,
			PlatformCerts: []*x509.Certificate{platformCert}, OrderQueryLimit: l}
		if _, err := NewClient(cfg, &fakeRecorder{}, nil); err == nil {
			t.Errorf("NewClient accepted OrderQueryLimit %+v", l)
		}
	}
	if l := (Limit{}).limiter(); l.Limit() != DefaultQueryRate || l.Burst() != DefaultQueryBurst {
		t.Errorf("defaults %v/%d", l.Limit(), l.Burst())
	}
	if l := (Limit{PerSecond: -1}).limiter(); l.Limit() != rate.Inf {
		t.Errorf("negative rate: %v, want no limit", l.Limit())
	}
}
