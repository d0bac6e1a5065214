package service

import (
	"context"
	"fmt"
	"time"
)

// WebhookDelivery is the sending of one event to one endpoint: at least
// once, in event order per endpoint, retried on the retry schedule.
type WebhookDelivery struct {
	ID            int64
	EndpointID    string
	EventID       string
	EventSequence uint64
	EventType     EventType
	SubMchID      string
	State         WebhookDeliveryState
	Attempts      int
	// NextAttemptTime is when a PENDING delivery is due; zero otherwise.
	NextAttemptTime time.Time
	LastAttemptTime time.Time // zero before the first attempt
	LastStatus      int       // the last answer's HTTP status; 0: none arrived
	LastError       string    // why the last attempt failed; "" when it did not
	CreateTime      time.Time
	UpdateTime      time.Time
}

// WebhookDeliveryState is a delivery's state.
type WebhookDeliveryState string

// The delivery states. PENDING -> DELIVERED or FAILED; Redeliver turns a
// final one PENDING again.
const (
	WebhookDeliveryPending   WebhookDeliveryState = "PENDING"
	WebhookDeliveryDelivered WebhookDeliveryState = "DELIVERED"
	WebhookDeliveryFailed    WebhookDeliveryState = "FAILED"
)

// WebhookDeliveryStates lists the delivery states.
var WebhookDeliveryStates = []WebhookDeliveryState{WebhookDeliveryPending, WebhookDeliveryDelivered, WebhookDeliveryFailed}

// DefaultWebhookRetrySchedule is the delay before each attempt of a
// delivery, the first one included: ten attempts over about three days.
var DefaultWebhookRetrySchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// MaxWebhookRetryAfter bounds the wait a receiver's Retry-After imposes.
const MaxWebhookRetryAfter = 24 * time.Hour

// WebhookDeliveryFilter selects deliveries, in event sequence order. Zero
// fields do not filter.
type WebhookDeliveryFilter struct {
	EndpointID    string
	EventID       string
	State         WebhookDeliveryState
	AfterSequence uint64
	PageSize      int // 0: no limit (the store); the service bounds it
}

// NewWebhookDelivery is the PENDING delivery of ev to endpointID, due at
// now.
func NewWebhookDelivery(endpointID string, ev Event, now time.Time) WebhookDelivery {
	return WebhookDelivery{EndpointID: endpointID, EventID: ev.ID, EventSequence: ev.Sequence, EventType: ev.Type,
		SubMchID: ev.SubMchID, State: WebhookDeliveryPending, NextAttemptTime: now, CreateTime: now, UpdateTime: now}
}

// WebhookAttempt is the outcome of one POST of a delivery.
type WebhookAttempt struct {
	Time       time.Time
	Status     int           // 0 when no answer arrived
	Err        string        // the transport error, if any
	RetryAfter time.Duration // the answer's Retry-After, if any
}

// Attempted decides the delivery's state after attempt a: DELIVERED on a
// 2xx; FAILED on 410 Gone, which also disables the endpoint (gone is
// true); else PENDING again after the schedule's next delay (at least the
// Retry-After of a 429 or 503, up to MaxWebhookRetryAfter), or FAILED when
// the schedule has no attempt left.
func (d WebhookDelivery) Attempted(a WebhookAttempt, schedule []time.Duration) (next WebhookDelivery, gone bool) {
	d.Attempts++
	d.LastAttemptTime, d.UpdateTime = a.Time, a.Time
	d.LastStatus, d.LastError = a.Status, a.Err
	d.NextAttemptTime = time.Time{}
	switch {
	case a.Status >= 200 && a.Status < 300:
		d.State, d.LastError = WebhookDeliveryDelivered, ""
		return d, false
	case a.Status == 410:
		d.State = WebhookDeliveryFailed
		return d, true
	case d.Attempts >= len(schedule):
		d.State = WebhookDeliveryFailed
		return d, false
	}
	delay := schedule[d.Attempts]
	if a.Status == 429 || a.Status == 503 {
		delay = max(delay, min(a.RetryAfter, MaxWebhookRetryAfter))
	}
	d.State, d.NextAttemptTime = WebhookDeliveryPending, a.Time.Add(delay)
	return d, false
}

// ErrWebhookDeliveryNotFound is Redeliver's error when the event has no
// delivery to an endpoint the caller sees.
var ErrWebhookDeliveryNotFound = &Error{Kind: KindNotFound, Reason: "WEBHOOK_DELIVERY_NOT_FOUND", Message: "no webhook delivery of this event"}

// ListWebhookDeliveries returns the deliveries of endpoint f.EndpointID
// (required) that f selects, in event order, at most f.PageSize (DefaultPageSize when 0,
// at most MaxPageSize); the next page starts after the last one's EventSequence.
// ErrWebhookEndpointNotFound when the caller sees no such endpoint.
func (s *Service) ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error) {
	var v violations
	if f.EndpointID == "" {
		v.add("endpoint_id", "is required")
	}
	if f.State != "" && f.State != WebhookDeliveryPending && f.State != WebhookDeliveryDelivered && f.State != WebhookDeliveryFailed {
		v.add("state", "must be PENDING, DELIVERED or FAILED")
	}
	v.token("event_id", f.EventID, 64, false)
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, err := visibleEndpoint(ctx, s.store, f.EndpointID); err != nil {
		return nil, fmt.Errorf("list webhook deliveries of %s: %w", f.EndpointID, err)
	}
	ds, err := s.store.ListWebhookDeliveries(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries of %s: %w", f.EndpointID, err)
	}
	return ds, nil
}

// Redeliver queues again the final (DELIVERED or FAILED) deliveries of
// event eventID to the enabled endpoints the caller sees, with a fresh
// retry schedule, and returns the deliveries of the event it touched. A
// re-queued delivery is the oldest of its endpoint, so it is sent before
// the endpoint's later events. ErrWebhookDeliveryNotFound when the event
// has no delivery to such an endpoint.
func (s *Service) Redeliver(ctx context.Context, eventID string) ([]WebhookDelivery, error) {
	var v violations
	v.token("event_id", eventID, 64, true)
	if err := v.err(); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var out []WebhookDelivery
	err := s.store.InTx(ctx, func(tx Tx) error {
		out = nil
		ds, err := tx.ListWebhookDeliveries(ctx, WebhookDeliveryFilter{EventID: eventID})
		if err != nil {
			return err
		}
		for _, d := range ds {
			e, err := visibleEndpoint(ctx, tx, d.EndpointID)
			if KindOf(err) == KindNotFound {
				continue
			}
			if err != nil {
				return err
			}
			if e.State != WebhookEndpointEnabled {
				continue
			}
			if d.State != WebhookDeliveryPending {
				d.State, d.Attempts, d.NextAttemptTime, d.UpdateTime = WebhookDeliveryPending, 0, now, now
				if err := tx.UpdateWebhookDelivery(ctx, d); err != nil {
					return err
				}
			}
			out = append(out, d)
		}
		if len(out) == 0 {
			return ErrWebhookDeliveryNotFound
		}
		return s.audit(ctx, tx, "Redeliver", "events/"+eventID)
	})
	if err != nil {
		return nil, fmt.Errorf("redeliver event %s: %w", eventID, err)
	}
	return out, nil
}
