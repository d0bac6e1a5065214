// Package webhook delivers events to webhook endpoints: at least once, in
// event order per endpoint, signed as the Standard Webhooks specification
// says, retried on a schedule, durably (the deliveries are rows of the
// store, so a restart, even after SIGKILL, resumes them). Every replica on
// a shared store runs an engine; an endpoint is served by the one replica
// holding its lease ("webhook-endpoint/" + id), renewed while it serves,
// so two replicas never deliver one endpoint's events at the same moment.
package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// DefaultInFlight is the default bound of the attempts under way at once to
// one endpoint.
const DefaultInFlight = 8

// Encoder returns the body of the POST of an event: its JSON.
type Encoder func(service.Event) ([]byte, error)

// Store is what the engine needs of the store.
type Store interface {
	service.WebhookReader
	// InTx runs fn in one write transaction (service.Store's).
	InTx(ctx context.Context, fn func(service.Tx) error) error
	// ListEvents returns the events f selects, in sequence order.
	ListEvents(ctx context.Context, f service.EventFilter) ([]service.Event, error)
	// ClaimLease and ReleaseLease are service.Store's.
	ClaimLease(ctx context.Context, name string, now time.Time, l service.Lease) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Config tunes an Engine. Zero fields take the defaults.
type Config struct {
	// RetrySchedule is the delay before each attempt of a delivery, the
	// first included; its length is the number of attempts.
	// Default: service.DefaultWebhookRetrySchedule.
	RetrySchedule []time.Duration
	// Interval is how often the engine looks for events and due
	// deliveries (Notify wakes it sooner). Default: one second.
	Interval time.Duration
	// Timeout bounds one attempt. Default: DefaultTimeout (15 s).
	Timeout time.Duration
	// Workers bounds the endpoints served at once. Default: 4.
	Workers int
	// BatchSize is how many events one read takes, and how many attempts
	// one transaction records. Default: 100.
	BatchSize int
	// InFlight bounds the attempts under way at once to one endpoint; they
	// start in sequence order. 1 sends each delivery only after the one
	// before was delivered or failed. Default: DefaultInFlight.
	InFlight int
	// Owner names this replica: the holder of the endpoints' leases it
	// takes. Default: a random name.
	Owner string
	// LeaseTTL is how long an endpoint's lease lasts unless renewed; it is
	// renewed every third of it while the endpoint is served. Default:
	// service.DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Clock tells the time. Default: the system clock.
	Clock service.Clock
	// Log receives failures; nil discards them.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = service.DefaultWebhookRetrySchedule
	}
	c.RetrySchedule = slices.Clone(c.RetrySchedule)
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Owner == "" {
		c.Owner = service.NewReplicaName()
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = service.DefaultLeaseTTL
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Engine turns events into deliveries and sends them.
type Engine struct {
	cfg    Config
	store  Store
	encode Encoder
	client *http.Client
	wake   chan struct{}

	mu    sync.Mutex
	busy  map[string]bool // endpoints a worker serves now
	again map[string]bool // busy endpoints a round found: served again at once

	// enabled caches the ids of the enabled endpoints for the rounds a
	// commit wakes, which come after every commit that appends events:
	// reading every endpoint each time cost more than the rest of a round.
	enabled endpointCache
}

// New returns an engine; Run starts it.
func New(cfg Config, store Store, encode Encoder) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{cfg: cfg, store: store, encode: encode, client: newClient(cfg.Timeout, cfg.InFlight),
		wake: make(chan struct{}, 1), busy: map[string]bool{}, again: map[string]bool{}}
}

// Notify wakes the engine: events were appended, or a delivery re-queued.
// It never blocks.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// EndpointsChanged tells the engine that an endpoint was created, enabled,
// disabled or deleted: the next round reads the endpoints again, and it
// comes at once. It never blocks.
func (e *Engine) EndpointsChanged() {
	e.enabled.invalidate()
	e.Notify()
}

// Run serves the enabled endpoints until ctx ends, then waits for the
// attempts under way, which ctx's end cancels: an attempt cut short is not
// recorded, so it is made again after a restart.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	refresh := true
	for {
		e.round(ctx, &wg, refresh)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			refresh = true
		case <-e.wake:
			refresh = false
		}
	}
}

// round starts a worker for each enabled endpoint none serves, up to
// cfg.Workers in all. It reads the endpoints when refresh is set (the
// rounds of the ticker) or the cache is stale, else takes the cached ids:
// so an endpoint another replica on a shared store changed is seen within
// cfg.Interval, one this replica's service changed at once (see
// EndpointsChanged). A cached id whose endpoint is no longer enabled costs
// its worker one read, never a delivery: the worker reads the endpoint
// before serving it.
func (e *Engine) round(ctx context.Context, wg *sync.WaitGroup, refresh bool) {
	ids, err := e.enabledIDs(ctx, refresh)
	if err != nil {
		if ctx.Err() == nil {
			e.cfg.Log.Error("webhook endpoints not read", "error", err.Error())
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if e.busy[id] {
			// Its worker may have looked before what woke this round
			// was committed: it serves the endpoint once more.
			e.again[id] = true
			continue
		}
		if len(e.busy) >= e.cfg.Workers {
			return
		}
		e.busy[id] = true
		wg.Go(func() { e.work(ctx, id) })
	}
}

// enabledIDs returns the ids of the enabled endpoints, in creation order:
// the cached ones unless refresh is set or the cache is stale.
func (e *Engine) enabledIDs(ctx context.Context, refresh bool) ([]string, error) {
	ids, gen, ok := e.enabled.get()
	if ok && !refresh {
		return ids, nil
	}
	eps, err := e.store.WebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	ids = nil
	for _, ep := range eps {
		if ep.State == service.WebhookEndpointEnabled {
			ids = append(ids, ep.ID)
		}
	}
	e.enabled.set(ids, gen)
	return ids, nil
}

// work serves the endpoint id until a round no longer asks for it again,
// under the endpoint's lease: taken once for a run of serves, renewed
// while they last, and let go before the endpoint stops being busy here
// (so a worker this replica starts next never finds its lease being
// released). It reads the endpoint first: the round's ids may be cached,
// and its cursor moves with every fill.
func (e *Engine) work(ctx context.Context, id string) {
	for {
		ep, ok := e.current(ctx, id)
		if !ok {
			e.mu.Lock()
			delete(e.busy, id)
			e.mu.Unlock()
			return
		}
		again, err := e.serveLeased(ctx, &ep)
		if err != nil && ctx.Err() == nil {
			e.cfg.Log.Error("webhook endpoint not served", "endpoint_id", id, "error", err.Error())
		}
		e.mu.Lock()
		// A round that came while the lease was let go asks once more.
		again = (again || e.again[id]) && ctx.Err() == nil
		delete(e.again, id)
		if !again {
			delete(e.busy, id)
		}
		e.mu.Unlock()
		if !again {
			return
		}
	}
}

// current reads the endpoint id and reports whether it is enabled. One
// that is not (another replica disabled or deleted it since the cache was
// filled) makes the cache stale.
func (e *Engine) current(ctx context.Context, id string) (service.StoredWebhookEndpoint, bool) {
	ep, err := e.store.WebhookEndpoint(ctx, id)
	switch {
	case err == nil && ep.State == service.WebhookEndpointEnabled:
		return ep, true
	case err == nil || service.KindOf(err) == service.KindNotFound:
		e.enabled.invalidate()
	case ctx.Err() == nil:
		e.cfg.Log.Error("webhook endpoint not read", "endpoint_id", id, "error", err.Error())
	}
	return ep, false
}

// serveLeased serves *ep, and again each time a round asks for it, while
// this replica holds the endpoint's lease, renewing it, then lets it go.
// It reports whether a round asked for the endpoint when it stopped for
// a failed serve. Serving stops (its attempts under way are cut short, not
// recorded, and made again by the next holder) if a renewal fails: another
// replica may take it over. An endpoint another replica holds is not
// served: that replica serves it.
func (e *Engine) serveLeased(ctx context.Context, ep *service.StoredWebhookEndpoint) (again bool, err error) {
	name := "webhook-endpoint/" + ep.ID
	l := service.Lease{Owner: e.cfg.Owner, TTL: e.cfg.LeaseTTL}
	held, err := e.store.ClaimLease(ctx, name, e.cfg.Clock.Now(), l)
	if err != nil || !held {
		return false, err
	}
	leased, lost := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(l.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-leased.Done():
				return
			case <-t.C:
			}
			held, err := e.store.ClaimLease(leased, name, e.cfg.Clock.Now(), l)
			if err == nil && !held {
				err = errors.New("another replica took the lease over")
			}
			if err != nil {
				lost(fmt.Errorf("lease of endpoint %s not renewed: %w", ep.ID, err))
				return
			}
		}
	}()
	for {
		err = e.serve(leased, *ep)
		e.mu.Lock()
		again = e.again[ep.ID]
		delete(e.again, ep.ID)
		e.mu.Unlock()
		if err != nil || !again || leased.Err() != nil {
			break
		}
		cur, cerr := e.store.WebhookEndpoint(leased, ep.ID)
		if cerr != nil || cur.State != service.WebhookEndpointEnabled {
			again, err = false, cerr
			break
		}
		*ep = cur
	}
	if cause := context.Cause(leased); ctx.Err() == nil && leased.Err() != nil {
		err = errors.Join(err, cause)
	}
	lost(nil)
	<-renewed
	if rerr := e.store.ReleaseLease(context.WithoutCancel(ctx), name, l.Owner); rerr != nil {
		e.cfg.Log.Warn("webhook endpoint lease not released; it expires", "endpoint_id", ep.ID, "error", rerr.Error())
	}
	return again && err != nil, err
}

// serve takes the endpoint's new events, then sends its due deliveries
// in order. A batch's attempts are recorded while the next batch is sent
// (one recording at a time, in batch order): the next batch takes the
// deliveries after the last one started, so none is sent again for want
// of its record, and the sending does not stop for every commit. The next
// batch is read while the one before is sent, so that the endpoint does
// not wait for the reads either. A batch that
// holds the rest back (an attempt left PENDING, a 410) ends the run once
// recorded. Every return waits for the recording under way.
func (e *Engine) serve(ctx context.Context, ep service.StoredWebhookEndpoint) error {
	if err := e.fill(ctx, ep); err != nil {
		return err
	}
	var recorded chan error // the outcome of the recording under way, if one is
	wait := func() error {
		if recorded == nil {
			return nil
		}
		err := <-recorded
		recorded = nil
		return err
	}
	cur := e.load(ctx, ep.ID, 0)
	for ctx.Err() == nil {
		if cur.err != nil || len(cur.heads) == 0 {
			if rerr := wait(); rerr != nil {
				return rerr
			}
			return cur.err
		}
		// A full batch's next is read while it is sent: the deliveries
		// after its last are not changed by its attempts. Only a full
		// batch may have more (b.more), and one that ends early does not
		// use what was read.
		var next loaded
		var fetched sync.WaitGroup
		if len(cur.heads) == e.cfg.BatchSize {
			fetched.Go(func() { next = e.load(ctx, ep.ID, cur.heads[len(cur.heads)-1].EventSequence) })
		}
		b, err := e.sendBatch(ctx, cur)
		fetched.Wait()
		if rerr := wait(); rerr != nil {
			// The batch just sent is not recorded: its deliveries stay
			// PENDING and are sent again, as after a crash.
			return rerr
		}
		if err != nil {
			return err
		}
		if len(b.done) > 0 {
			recorded = make(chan error, 1)
			go func() { recorded <- e.record(ctx, ep.ID, b) }()
		}
		if !b.more {
			return wait()
		}
		cur = next
	}
	return wait()
}

// errMoved stops a fill whose endpoint changed under it; the next round
// starts again from the stored endpoint.
var errMoved = errors.New("endpoint changed")

// fill records a delivery of each event after the endpoint's cursor that
// it receives, and moves the cursor past them.
func (e *Engine) fill(ctx context.Context, ep service.StoredWebhookEndpoint) error {
	for {
		// A delivery records which event it carries, not the event: the
		// resources are read when the deliveries are sent (bodies).
		f := service.EventFilter{AfterSequence: ep.Cursor, Types: ep.EventTypes, SubMchIDs: ep.SubMchIDs, PageSize: e.cfg.BatchSize,
			WithoutResources: true}
		evs, err := e.store.ListEvents(ctx, f)
		if errors.Is(err, service.ErrEventCursorExpired) {
			// It fell behind PAPAYD_EVENT_RETENTION (disabled for long):
			// the events after its cursor that were pruned are lost to it.
			// It goes on from the oldest kept, all of them after its cursor.
			e.cfg.Log.Error("webhook endpoint fell behind the event retention: events pruned before it received them are not delivered",
				"endpoint_id", ep.ID, "cursor", ep.Cursor)
			f.AfterSequence = 0
			evs, err = e.store.ListEvents(ctx, f)
		}
		if err != nil || len(evs) == 0 {
			return err
		}
		now := e.cfg.Clock.Now()
		err = e.store.InTx(ctx, func(tx service.Tx) error {
			cur, err := tx.WebhookEndpoint(ctx, ep.ID)
			if err != nil {
				return err
			}
			if cur.State != service.WebhookEndpointEnabled || cur.Cursor != ep.Cursor {
				return errMoved
			}
			for _, ev := range evs {
				if !receives(cur.WebhookEndpoint, ev) {
					continue
				}
				_, err := tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery(ep.ID, ev, now))
				if err != nil && !errors.Is(err, service.ErrConflict) {
					return err
				}
			}
			cur.Cursor, cur.UpdateTime = evs[len(evs)-1].Sequence, now
			return tx.UpdateWebhookEndpoint(ctx, cur.WebhookEndpoint)
		})
		if errors.Is(err, errMoved) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fill endpoint %s: %w", ep.ID, err)
		}
		ep.Cursor = evs[len(evs)-1].Sequence
		if len(evs) < e.cfg.BatchSize {
			return nil
		}
	}
}

// receives reports whether ep receives ev: an event of its types and
// sub-merchants, created after the endpoint.
func receives(ep service.WebhookEndpoint, ev service.Event) bool {
	return (len(ep.EventTypes) == 0 || slices.Contains(ep.EventTypes, ev.Type)) &&
		(len(ep.SubMchIDs) == 0 || slices.Contains(ep.SubMchIDs, ev.SubMchID)) &&
		!ev.CreateTime.Before(ep.CreateTime)
}

// batch is what one sendBatch did: the deliveries as its attempts left
// them, the 410 that disables the endpoint, and whether more may be due at
// once (every delivery of a full batch was attempted, and none held the
// rest back).
type batch struct {
	done []service.WebhookDelivery
	gone *service.WebhookAttempt
	more bool
}

// loaded is a batch to send: the endpoint as read, its oldest PENDING
// deliveries after an event sequence (the first one due), their events,
// or the error that stopped the read. No heads: nothing to send now.
type loaded struct {
	ep     service.StoredWebhookEndpoint
	heads  []service.WebhookDelivery
	bodies map[string]service.Event
	err    error
}

// load reads the endpoint's batch after the event sequence after, up to
// cfg.BatchSize deliveries: none when the endpoint is not enabled or the
// first is not due yet.
func (e *Engine) load(ctx context.Context, endpointID string, after uint64) loaded {
	ep, err := e.store.WebhookEndpoint(ctx, endpointID)
	if err != nil || ep.State != service.WebhookEndpointEnabled {
		return loaded{err: err}
	}
	heads, err := e.store.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EndpointID: endpointID,
		State: service.WebhookDeliveryPending, AfterSequence: after, PageSize: e.cfg.BatchSize})
	if err != nil || len(heads) == 0 {
		return loaded{err: err}
	}
	if heads[0].NextAttemptTime.After(e.cfg.Clock.Now()) {
		return loaded{}
	}
	bodies, err := e.bodies(ctx, ep.WebhookEndpoint, heads)
	if err != nil {
		return loaded{err: err}
	}
	return loaded{ep: ep, heads: heads, bodies: bodies}
}

// sendBatch makes one attempt of each delivery of l; record records them.
// The attempts start in sequence order, at most cfg.InFlight at once; none
// starts after one that is not due yet, or after an attempt that left its
// delivery PENDING (the deliveries after it wait for it), or after a 410.
func (e *Engine) sendBatch(ctx context.Context, l loaded) (batch, error) {
	ep, heads := l.ep, l.heads
	var (
		wg      sync.WaitGroup
		slots   = make(chan struct{}, e.cfg.InFlight)
		mu      sync.Mutex
		held    bool                    // an attempt held the rest back
		gone    *service.WebhookAttempt // the 410 that disables the endpoint
		results = make([]*service.WebhookDelivery, len(heads))
		readErr error
	)
	holding := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return held
	}
	// attempt encodes delivery i's event and sends it, then frees its slot.
	attempt := func(i int) {
		defer func() { <-slots }()
		d := heads[i]
		body, err := e.body(ctx, d, l.bodies)
		now := e.cfg.Clock.Now()
		var unsendable *unsendableError
		if errors.As(err, &unsendable) {
			// No retry would change that.
			d.State, d.NextAttemptTime, d.LastError, d.UpdateTime = service.WebhookDeliveryFailed, time.Time{}, err.Error(), now
			mu.Lock()
			results[i] = &d
			mu.Unlock()
			return
		}
		if err != nil {
			// Not attempted: it stays PENDING, and holds the rest back.
			mu.Lock()
			readErr, held = cmp.Or(readErr, err), true
			mu.Unlock()
			return
		}
		a := post(ctx, e.client, ep.URL, ep.Secret, d.EventID, body, now)
		if ctx.Err() != nil {
			return // cut short: not an attempt; made again later
		}
		if a.RetryAfter > 0 {
			// Retry-After counts from the answer; the attempt's time is
			// when it was sent.
			a.RetryAfter += max(0, e.cfg.Clock.Now().Sub(now))
		}
		next, g := d.Attempted(a, e.cfg.RetrySchedule)
		mu.Lock()
		defer mu.Unlock()
		results[i] = &next
		if g && gone == nil {
			gone = &a
		}
		if g || next.State == service.WebhookDeliveryPending {
			held = true
		}
	}
	// The attempts run on at most cfg.InFlight workers of this batch, not
	// a goroutine each: a worker's stack grows once for the HTTP client's
	// calls, not once per attempt. The events are encoded by the workers
	// too, on as many cores as there are.
	jobs := make(chan int)
	workers, started := 0, 0
	for i, d := range heads {
		slots <- struct{}{}
		if holding() || ctx.Err() != nil || d.NextAttemptTime.After(e.cfg.Clock.Now()) {
			<-slots
			break
		}
		started++
		if workers < e.cfg.InFlight {
			// Holding a slot, this attempt may start: a new worker takes
			// it unless an idle one does.
			select {
			case jobs <- i:
				continue
			default:
			}
			workers++
			wg.Go(func() {
				attempt(i)
				for i := range jobs {
					attempt(i)
				}
			})
			continue
		}
		jobs <- i // a slot is held, so a worker is idle or about to be
	}
	close(jobs)
	wg.Wait()
	b := batch{gone: gone, more: readErr == nil && !held && started == e.cfg.BatchSize}
	for _, d := range results {
		if d != nil {
			b.done = append(b.done, *d)
		}
	}
	b.more = b.more && len(b.done) == started
	if len(b.done) == 0 {
		return batch{}, readErr
	}
	return b, nil
}

// record stores the deliveries of b in one transaction, and disables the
// endpoint if an attempt was answered 410. It runs to its end when ctx
// ends: the attempts were made, and are recorded as made.
func (e *Engine) record(ctx context.Context, endpointID string, b batch) error {
	ctx = context.WithoutCancel(ctx)
	err := e.store.InTx(ctx, func(tx service.Tx) error {
		for _, d := range b.done {
			if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
				return err
			}
		}
		if b.gone == nil {
			return nil
		}
		cur, err := tx.WebhookEndpoint(ctx, endpointID)
		if err != nil || cur.State != service.WebhookEndpointEnabled {
			return err
		}
		cur.State, cur.DisableReason, cur.UpdateTime = service.WebhookEndpointDisabled, "HTTP 410 Gone", b.gone.Time
		return tx.UpdateWebhookEndpoint(ctx, cur.WebhookEndpoint)
	})
	if err != nil {
		return fmt.Errorf("record %d deliveries of endpoint %s: %w", len(b.done), endpointID, err)
	}
	if b.gone != nil {
		e.enabled.invalidate()
	}
	for _, d := range b.done {
		if d.State == service.WebhookDeliveryFailed {
			e.cfg.Log.Warn("webhook delivery failed", "endpoint_id", endpointID, "event_id", d.EventID,
				"attempts", d.Attempts, "error", d.LastError)
		}
	}
	return nil
}

// unsendableError is the error of a delivery whose event cannot be sent:
// the store no longer has it, or it does not encode.
type unsendableError struct{ msg string }

func (e *unsendableError) Error() string { return e.msg }

// bodies reads the events of the deliveries ds (in sequence order) in one
// query: the endpoint's events from the first one's on. body reads any it
// misses (a redelivered event, or one the endpoint's filter changed on).
func (e *Engine) bodies(ctx context.Context, ep service.WebhookEndpoint, ds []service.WebhookDelivery) (map[string]service.Event, error) {
	evs, err := e.store.ListEvents(ctx, service.EventFilter{AfterSequence: ds[0].EventSequence - 1, Types: ep.EventTypes,
		SubMchIDs: ep.SubMchIDs, PageSize: len(ds)})
	if err != nil {
		return nil, fmt.Errorf("read events of endpoint %s: %w", ep.ID, err)
	}
	m := make(map[string]service.Event, len(evs))
	for _, ev := range evs {
		m[ev.ID] = ev
	}
	return m, nil
}

// body returns the encoded event of d, from read when it has it.
func (e *Engine) body(ctx context.Context, d service.WebhookDelivery, read map[string]service.Event) ([]byte, error) {
	ev, ok := read[d.EventID]
	if !ok {
		evs, err := e.store.ListEvents(ctx, service.EventFilter{AfterSequence: d.EventSequence - 1, PageSize: 1})
		if err != nil {
			return nil, fmt.Errorf("read event %s: %w", d.EventID, err)
		}
		if len(evs) == 0 || evs[0].ID != d.EventID {
			return nil, &unsendableError{"event not found"}
		}
		ev = evs[0]
	}
	b, err := e.encode(ev)
	if err != nil {
		return nil, &unsendableError{"event not encoded: " + err.Error()}
	}
	return b, nil
}
