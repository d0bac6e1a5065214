package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Figure 7: webhook deliveries per second to one endpoint while charges
// write events. One endpoint (every event type) on a receiver in the bench
// process (127.0.0.1) is created. Callers create charges that succeed at
// once (each writes several events) for six load times. For the first
// five the receiver answers 503 with a Retry-After up to their end, so a
// backlog builds (a delivery that fails holds back those not sent yet);
// then it answers 200 at once. The figure is the
// distinct webhook-ids received from its first 200 to the end of the
// load, while the charges still write: the engine's delivery rate, not the
// rate events are written at, as long as a backlog remains at the end of
// the window (reported: the deliveries that arrive after the load). The
// first requests' signatures are verified with the Standard Webhooks
// library.
//
// The drain: once that backlog is delivered, the receiver holds again
// (503, Retry-After up to the end) while the callers write for three load
// times; then they stop, the receiver answers 200, and papayd delivers the
// backlog with nothing else running, from its first 200 to its last
// (at least minDrained deliveries, or the comparison is refused as too
// short to mean anything).
//
// Baseline: a bare net/http client POSTing the requests the receiver kept
// (the first hookKeep distinct deliveries answered 200, headers and
// bodies as papayd sent them), webhookInFlight at once over keep-alive
// connections, each once, to a fresh receiver of the same kind on the same
// machine; distinct webhook-ids received per second. It runs after the
// loads, without charges competing for the cores, so it is compared with
// papayd's drain.

// webhookThroughput is figure 7.
type webhookThroughput struct {
	Window   time.Duration // from the first 200 to the end of the load
	InWindow int           // distinct deliveries received in the window
	Charges  result        // the CreateCharge load that wrote the events
	Leftover int           // distinct deliveries received after the load, until the backlog ran dry (bounded)
	// The drain: the backlog written by Backlog while the receiver held,
	// delivered with nothing else running, from the first 200 to the last.
	Backlog    result
	Drained    int
	DrainTime  time.Duration
	Verified   int // sampled signatures verified
	BadSig     string
	Duplicates int // 2xx-answered requests with an id already received
	// The bare client's replay: distinct ids received and how long.
	Bare         result
	BareDistinct int
}

const webhookTargetRate = 1000

// minDrained is the smallest drain the bare client is compared with.
const minDrained = 1000

// webhookBareTarget bounds papayd's delivery rate from below as a share
// of the bare client's.
const webhookBareTarget = 0.5

// webhookInFlight is papayd's default PAPAYD_WEBHOOK_IN_FLIGHT, which the
// bench runs with.
const webhookInFlight = 8

func (w webhookThroughput) rate() float64 {
	if w.Window <= 0 {
		return 0
	}
	return float64(w.InWindow) / w.Window.Seconds()
}

func (w webhookThroughput) drainRate() float64 {
	if w.DrainTime <= 0 {
		return 0
	}
	return float64(w.Drained) / w.DrainTime.Seconds()
}

// backlogHeld reports whether deliveries were still queued when the
// window ended, so the window measured the engine, not the writers.
func (w webhookThroughput) backlogHeld() bool { return w.Leftover > 0 }

// hookSink is the receiver: it defers the requests that arrive before
// holdUntil, then counts distinct webhook-ids and keeps the first
// hookKeep distinct requests (for signature checks and the bare client).
type hookSink struct {
	mu        sync.Mutex
	holdUntil time.Time
	ids       map[string]struct{}
	dups      int
	firstOK   time.Time // the first new id's arrival since hold
	lastOK    time.Time // the last new id's
	kept      []keptHook
}

// keptHook is one request as it arrived.
type keptHook struct {
	header http.Header
	body   []byte
}

// hookSample is how many of the kept requests have their signatures
// verified; hookKeep how many are kept for the bare client's replay (a
// few tens of MiB at most).
const (
	hookSample = 20
	hookKeep   = 50000
)

func (s *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("webhook-id")
	s.mu.Lock()
	wait := time.Until(s.holdUntil)
	s.mu.Unlock()
	if wait > 0 {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	// Every body is read into memory, kept or not, so the receiver does
	// the same work for papayd and for the bare client.
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	if _, ok := s.ids[id]; ok {
		s.dups++
	} else {
		now := time.Now()
		if s.firstOK.IsZero() {
			s.firstOK = now
		}
		s.lastOK = now
		s.ids[id] = struct{}{}
		if len(s.kept) < hookKeep {
			s.kept = append(s.kept, keptHook{r.Header.Clone(), body})
		}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// hold answers 503 until until, and starts a new first arrival.
func (s *hookSink) hold(until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdUntil, s.firstOK = until, time.Time{}
}

// arrivals returns the distinct ids received, and the first and last new
// id's arrival since hold.
func (s *hookSink) arrivals() (n int, first, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids), s.firstOK, s.lastOK
}

// settle waits until no new id arrived for 1.5 s (the engine's idle poll
// is 1 s), or until deadline; it returns the distinct ids received.
func (s *hookSink) settle(deadline time.Time) int {
	lastN, last := -1, time.Now()
	for time.Now().Before(deadline) && time.Since(last) < 1500*time.Millisecond {
		if n, _, _ := s.arrivals(); n != lastN {
			last, lastN = time.Now(), n
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, _, _ := s.arrivals()
	return n
}

// figureWebhooks measures figure 7.
func figureWebhooks(ctx context.Context, rep *report, p *papayd, sb *sandbox.Sandbox) error {
	o := rep.opts
	contracts, err := signAgreements(ctx, fleet{p}, sb, "oBenchWh", max(8, o.concurrency), o.concurrency)
	if err != nil {
		return err
	}
	// At least 6 s: a 503's Retry-After shorter than the retry schedule's
	// next delay (5 s) does not shorten it. Five load times: the engine
	// delivers several times faster than the charges write events, and
	// the backlog must outlast the window.
	hold := max(5*o.duration, 6*time.Second)
	sink := &hookSink{ids: map[string]struct{}{}}
	srv := httptest.NewUnstartedServer(sink)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	hooks := papayv1.NewWebhookServiceClient(p.conn)
	ep, err := hooks.CreateWebhookEndpoint(ctx, &papayv1.CreateWebhookEndpointRequest{Url: srv.URL + "/hook"})
	if err != nil {
		return fmt.Errorf("figure 7: create endpoint: %w", err)
	}
	// Deleted afterwards, so that later loads do not feed it.
	defer func() {
		_, _ = hooks.DeleteWebhookEndpoint(context.WithoutCancel(ctx), &papayv1.DeleteWebhookEndpointRequest{Id: ep.GetEndpoint().GetId()})
	}()
	charge := papaydCharge(fleet{p}, contracts, "WHK")
	create := func(ctx context.Context, i int) error { _, err := charge(ctx, i); return err }
	w := &rep.Webhooks
	sink.hold(time.Now().Add(hold))
	w.Charges = measure(fleet{p}, nil, nil, func() result {
		return runLoad(ctx, "CreateCharge feeding a webhook endpoint", o.concurrency, 1_000_000, hold+o.duration,
			create)
	})
	end := time.Now()
	n, firstOK, _ := sink.arrivals()
	if firstOK.IsZero() {
		return errors.New("figure 7: no delivery was answered 200 during the load")
	}
	w.Window, w.InWindow = end.Sub(firstOK), n
	// What was left: until nothing arrives (the backlog ran dry).
	before := sink.settle(time.Now().Add(6 * o.duration))
	w.Leftover = before - w.InWindow

	// The drain: a backlog written while the receiver holds, delivered
	// once the writers stopped.
	held := max(3*o.duration, 6*time.Second)
	sink.hold(time.Now().Add(held))
	w.Backlog = runLoad(ctx, "CreateCharge writing the drain's backlog", o.concurrency, 1_000_000, held-time.Second,
		create)
	// The held delivery is attempted again at the end of the hold (its
	// Retry-After, in whole seconds); the backlog is delivered from then on.
	for deadline := time.Now().Add(held + 10*time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, first, _ := sink.arrivals(); !first.IsZero() {
			break
		}
	}
	after := sink.settle(time.Now().Add(4 * o.duration))
	_, first, last := sink.arrivals()
	if after > before && !first.IsZero() {
		w.Drained, w.DrainTime = after-before, last.Sub(first)
	}
	wh, err := standardwebhooks.NewWebhook(ep.GetSecret())
	if err != nil {
		return err
	}
	sink.mu.Lock()
	kept, dups := sink.kept, sink.dups
	sink.mu.Unlock()
	w.Duplicates = dups
	for _, h := range kept[:min(hookSample, len(kept))] {
		if err := wh.Verify(h.body, h.header); err != nil {
			w.BadSig = err.Error()
			break
		}
		w.Verified++
	}
	logf("figure 7: %.0f charges/s written; %d webhook deliveries in %s (%.0f/s) while they wrote, then %d left over; a backlog of %d (%.0f charges/s while the receiver held) drained in %s (%.0f/s); %d signatures verified, %d duplicates",
		w.Charges.Rate(), w.InWindow, w.Window.Round(time.Millisecond), w.rate(), w.Leftover, w.Drained, w.Backlog.Rate(),
		w.DrainTime.Round(time.Millisecond), w.drainRate(), w.Verified, w.Duplicates)
	if w.BadSig != "" {
		return errors.New("figure 7: a delivery's signature does not verify: " + w.BadSig)
	}
	w.Bare, w.BareDistinct = bareDeliveries(ctx, kept, 2*o.duration)
	logf("  bare net/http client: %d of %d kept deliveries POSTed in %s, %d distinct received (%.0f/s), %d errors %s",
		w.Bare.N, len(kept), w.Bare.Elapsed.Round(time.Millisecond), w.BareDistinct, w.bareRate(), w.Bare.Errors, w.Bare.FirstErr)
	return ctx.Err()
}

// bareDeliveries POSTs each kept request once (for at most d) from a
// plain net/http client, webhookInFlight at once with keep-alive, to a
// fresh receiver answering 200; it returns the load and the distinct ids
// the receiver got.
func bareDeliveries(ctx context.Context, kept []keptHook, d time.Duration) (result, int) {
	sink := &hookSink{ids: map[string]struct{}{}}
	srv := httptest.NewUnstartedServer(sink)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: webhookInFlight, MaxIdleConnsPerHost: webhookInFlight, IdleConnTimeout: 90 * time.Second}}
	defer client.CloseIdleConnections()
	url := srv.URL + "/hook"
	res := runLoad(ctx, "bare net/http client, same requests", webhookInFlight, len(kept), d, func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(kept[i].body))
		if err != nil {
			return err
		}
		req.Header = kept[i].header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	n, _, _ := sink.arrivals()
	return res, n
}

// bareRate is the bare client's distinct deliveries per second.
func (w webhookThroughput) bareRate() float64 {
	if w.Bare.Elapsed <= 0 {
		return 0
	}
	return float64(w.BareDistinct) / w.Bare.Elapsed.Seconds()
}

func (r *report) webhookRows() []row {
	w := r.Webhooks
	q := ratio(w.drainRate(), w.bareRate())
	backlog := "a backlog remained throughout"
	if !w.backlogHeld() {
		backlog = "the backlog ran dry, so this is the write rate, not the engine's"
	}
	return []row{
		{fmt.Sprintf("7. Webhook deliveries/s to one endpoint, distinct webhook-ids received while %.0f charges/s wrote events (%s; %d of %d sampled signatures verified)",
			w.Charges.Rate(), backlog, w.Verified, min(hookSample, w.InWindow+w.Leftover)),
			fmt.Sprintf("%.0f/s", w.rate()), "-", "-", fmt.Sprintf("≥ %d/s", webhookTargetRate),
			w.rate() >= webhookTargetRate && w.backlogHeld() && w.BadSig == "" && w.Duplicates == 0},
		{fmt.Sprintf("7. Webhook deliveries with nothing else running (papayd draining a backlog of %d) vs a bare HTTP client (%d at once, the same %d requests, each once)",
			w.Drained, webhookInFlight, w.Bare.N),
			fmt.Sprintf("%.0f/s", w.drainRate()), fmt.Sprintf("%.0f/s (net/http)", w.bareRate()), fmt.Sprintf("%.2f", q),
			fmt.Sprintf("≥ %.2f", webhookBareTarget), q >= webhookBareTarget && w.Bare.Errors == 0 && w.Drained >= minDrained},
	}
}
