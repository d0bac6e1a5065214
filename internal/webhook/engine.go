// Package webhook delivers events to webhook endpoints: at least once, in
// event order per endpoint, signed as the Standard Webhooks specification
// says, retried on a schedule, durably (the deliveries are rows of the
// store, so a restart, even after SIGKILL, resumes them). One engine runs
// per database.
package webhook

import (
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

// Encoder returns the body of the POST of an event: its JSON.
type Encoder func(service.Event) ([]byte, error)

// Store is what the engine needs of the store.
type Store interface {
	service.WebhookReader
	// InTx runs fn in one write transaction (service.Store's).
	InTx(ctx context.Context, fn func(service.Tx) error) error
	// ListEvents returns the events f selects, in sequence order.
	ListEvents(ctx context.Context, f service.EventFilter) ([]service.Event, error)
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
	// BatchSize is how many events one read takes. Default: 100.
	BatchSize int
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

	mu   sync.Mutex
	busy map[string]bool // endpoints a worker serves now
}

// New returns an engine; Run starts it.
func New(cfg Config, store Store, encode Encoder) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{cfg: cfg, store: store, encode: encode, client: newClient(cfg.Timeout),
		wake: make(chan struct{}, 1), busy: map[string]bool{}}
}

// Notify wakes the engine: events were appended, or a delivery re-queued.
// It never blocks.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run serves the enabled endpoints until ctx ends, then waits for the
// attempts under way, which ctx's end cancels: an attempt cut short is not
// recorded, so it is made again after a restart.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		e.round(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.wake:
		}
	}
}

// round starts a worker for each enabled endpoint none serves, up to
// cfg.Workers in all.
func (e *Engine) round(ctx context.Context, wg *sync.WaitGroup) {
	eps, err := e.store.WebhookEndpoints(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.cfg.Log.Error("webhook endpoints not read", "error", err.Error())
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ep := range eps {
		if ep.State != service.WebhookEndpointEnabled || e.busy[ep.ID] {
			continue
		}
		if len(e.busy) >= e.cfg.Workers {
			return
		}
		e.busy[ep.ID] = true
		wg.Go(func() {
			defer func() {
				e.mu.Lock()
				delete(e.busy, ep.ID)
				e.mu.Unlock()
			}()
			if err := e.serve(ctx, ep); err != nil && ctx.Err() == nil {
				e.cfg.Log.Error("webhook endpoint not served", "endpoint_id", ep.ID, "error", err.Error())
			}
		})
	}
}

// serve takes the endpoint's new events, then sends its due deliveries
// in order.
func (e *Engine) serve(ctx context.Context, ep service.StoredWebhookEndpoint) error {
	if err := e.fill(ctx, ep); err != nil {
		return err
	}
	for ctx.Err() == nil {
		more, err := e.sendHead(ctx, ep.ID)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// errMoved stops a fill whose endpoint changed under it; the next round
// starts again from the stored endpoint.
var errMoved = errors.New("endpoint changed")

// fill records a delivery of each event after the endpoint's cursor that
// it receives, and moves the cursor past them.
func (e *Engine) fill(ctx context.Context, ep service.StoredWebhookEndpoint) error {
	for {
		evs, err := e.store.ListEvents(ctx, service.EventFilter{AfterSequence: ep.Cursor, Types: ep.EventTypes,
			SubMchIDs: ep.SubMchIDs, PageSize: e.cfg.BatchSize})
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

// sendHead makes one attempt of the endpoint's oldest PENDING delivery if
// it is due, and reports whether another may be due at once.
func (e *Engine) sendHead(ctx context.Context, endpointID string) (bool, error) {
	ep, err := e.store.WebhookEndpoint(ctx, endpointID)
	if err != nil || ep.State != service.WebhookEndpointEnabled {
		return false, err
	}
	heads, err := e.store.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EndpointID: endpointID,
		State: service.WebhookDeliveryPending, PageSize: 1})
	if err != nil || len(heads) == 0 {
		return false, err
	}
	d := heads[0]
	now := e.cfg.Clock.Now()
	if d.NextAttemptTime.After(now) {
		return false, nil
	}
	body, err := e.body(ctx, d)
	var a service.WebhookAttempt
	var unsendable *unsendableError
	switch {
	case errors.As(err, &unsendable):
		// No retry would change that.
		d.State, d.NextAttemptTime, d.LastError, d.UpdateTime = service.WebhookDeliveryFailed, time.Time{}, err.Error(), now
	case err != nil:
		return false, err
	default:
		a = post(ctx, e.client, ep.URL, ep.Secret, d.EventID, body, now)
		if ctx.Err() != nil {
			return false, nil // cut short: not an attempt; made again later
		}
		if a.RetryAfter > 0 {
			// Retry-After counts from the answer; the attempt's time is
			// when it was sent.
			a.RetryAfter += max(0, e.cfg.Clock.Now().Sub(now))
		}
	}
	err = e.store.InTx(context.WithoutCancel(ctx), func(tx service.Tx) error {
		var gone bool
		if d.State == service.WebhookDeliveryPending {
			d, gone = d.Attempted(a, e.cfg.RetrySchedule)
		}
		if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
			return err
		}
		if !gone {
			return nil
		}
		cur, err := tx.WebhookEndpoint(ctx, endpointID)
		if err != nil || cur.State != service.WebhookEndpointEnabled {
			return err
		}
		cur.State, cur.DisableReason, cur.UpdateTime = service.WebhookEndpointDisabled, "HTTP 410 Gone", a.Time
		return tx.UpdateWebhookEndpoint(ctx, cur.WebhookEndpoint)
	})
	if err != nil {
		return false, fmt.Errorf("record delivery %d: %w", d.ID, err)
	}
	if d.State == service.WebhookDeliveryFailed {
		e.cfg.Log.Warn("webhook delivery failed", "endpoint_id", endpointID, "event_id", d.EventID,
			"attempts", d.Attempts, "error", d.LastError)
	}
	return true, nil
}

// unsendableError is the error of a delivery whose event cannot be sent:
// the store no longer has it, or it does not encode.
type unsendableError struct{ msg string }

func (e *unsendableError) Error() string { return e.msg }

// body returns the encoded event of d.
func (e *Engine) body(ctx context.Context, d service.WebhookDelivery) ([]byte, error) {
	evs, err := e.store.ListEvents(ctx, service.EventFilter{AfterSequence: d.EventSequence - 1, PageSize: 1})
	if err != nil {
		return nil, fmt.Errorf("read event %s: %w", d.EventID, err)
	}
	if len(evs) == 0 || evs[0].ID != d.EventID {
		return nil, &unsendableError{"event not found"}
	}
	b, err := e.encode(evs[0])
	if err != nil {
		return nil, &unsendableError{"event not encoded: " + err.Error()}
	}
	return b, nil
}
