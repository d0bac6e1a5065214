package wechat

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/papayd/papayd/internal/service"
)

// Defaults of Config.OrderQueryLimit and Config.ContractQueryLimit.
//
// WeChat Pay Global publishes 150 qps for its refund, micropay and reverse
// endpoints and no figure for the papay query endpoints (see
// reference/wechatpay-global-papay-api.md, "Rate limits"); the defaults stay
// well below the published figure, per endpoint and per process.
const (
	DefaultQueryRate  = 100 // queries per second
	DefaultQueryBurst = 20
)

// Limit is a token bucket: PerSecond queries a second on average, up to
// Burst at once. Zero fields take the defaults (DefaultQueryRate,
// DefaultQueryBurst); a negative PerSecond means no limit.
type Limit struct {
	PerSecond float64
	Burst     int
}

func (l Limit) limiter() *rate.Limiter {
	r, b := l.PerSecond, l.Burst
	if r == 0 {
		r = DefaultQueryRate
	}
	if b <= 0 {
		b = DefaultQueryBurst
	}
	if r < 0 {
		return rate.NewLimiter(rate.Inf, b)
	}
	return rate.NewLimiter(rate.Limit(r), b)
}

func (l Limit) check(name string) error {
	if math.IsNaN(l.PerSecond) || math.IsInf(l.PerSecond, 0) || l.Burst < 0 {
		return fmt.Errorf("wechat client: %s must be a finite rate and a burst not negative", name)
	}
	return nil
}

// queryGate guards one query endpoint (order query, contract query): its
// outbound rate limit, and the merging of concurrent optional queries.
//
// A call marked service.WithOptionalCall (a refresh a client asked for)
// takes a token if one is there and is refused with service.ErrRateLimited
// otherwise, without calling WeChat; concurrent optional calls with the
// same key share one call (and one token), which runs detached from any
// one caller's context, under the Client's Timeout, so a caller who hangs
// up leaves it to the others. Any other call (the reconciler's, a
// deduction's or close's follow-up, papayd verify) waits for a token,
// within its context, and is never shared: it is always answered by a
// request sent after it was made. A waiting call's reservation comes
// before later optional calls, so refreshes cannot starve the reconciler.
type queryGate struct {
	path    string // for errors
	lim     *rate.Limiter
	flights singleflight.Group
}

func newQueryGate(path string, l Limit) *queryGate {
	return &queryGate{path: path, lim: l.limiter()}
}

// do runs call through the gate; key names the object queried.
func do[T any](ctx context.Context, g *queryGate, key string, call func(context.Context) (T, error)) (T, error) {
	var zero T
	if !service.OptionalCall(ctx) {
		if err := g.lim.Wait(ctx); err != nil {
			return zero, fmt.Errorf("wechatpay GET %s: %w: waiting for papayd's outbound limit: %w", g.path, service.ErrWeChatUnavailable, err)
		}
		return call(ctx)
	}
	ch := g.flights.DoChan(key, func() (any, error) {
		if !g.lim.Allow() {
			return zero, fmt.Errorf("wechatpay GET %s: %w", g.path, service.ErrRateLimited)
		}
		return call(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		v, _ := r.Val.(T)
		return v, r.Err
	case <-ctx.Done():
		return zero, fmt.Errorf("wechatpay GET %s: %w: %w", g.path, service.ErrWeChatUnavailable, ctx.Err())
	}
}

// QueryTransaction reads an order by q.TransactionID, or by q.OutTradeNo
// when TransactionID is empty, within OrderQueryLimit (see queryGate). An
// order WeChat does not know is a *service.RemoteError (404 /
// ORDER_NOT_EXIST / NOT_FOUND). An answer that does not decode, has no
// trade_state, or names another order wraps service.ErrWeChatUnavailable.
// An optional query beyond the limit wraps service.ErrRateLimited.
func (c *Client) QueryTransaction(ctx context.Context, q service.TransactionQuery) (service.RemoteTransaction, error) {
	key := q.SubMchID + "\x00" + q.TransactionID + "\x00" + q.OutTradeNo
	return do(ctx, c.orderGate, key, func(ctx context.Context) (service.RemoteTransaction, error) {
		return c.queryTransaction(ctx, q)
	})
}

// QueryContract reads a contract by q.ContractID, or by q.OutContractCode
// and q.PlanID when ContractID is empty, within ContractQueryLimit (see
// queryGate). State and termination mode are kept as WeChat gives them. An
// optional query beyond the limit wraps service.ErrRateLimited.
func (c *Client) QueryContract(ctx context.Context, q service.ContractQuery) (service.RemoteContract, error) {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%d", q.SubMchID, q.SPAppID, q.SubAppID, q.ContractID, q.OutContractCode, q.PlanID)
	return do(ctx, c.contractGate, key, func(ctx context.Context) (service.RemoteContract, error) {
		return c.queryContract(ctx, q)
	})
}
