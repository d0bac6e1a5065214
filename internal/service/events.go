package service

import (
	"context"
	"fmt"
	"time"
)

// DefaultEventRetention is how long events are kept when
// ReconcileConfig.EventRetention is not set (PAPAYD_EVENT_RETENTION).
const DefaultEventRetention = 720 * time.Hour

// pruneBatch bounds the events one prune transaction deletes, so that a
// large backlog never holds the writer for long.
const pruneBatch = 1000

// StreamSubscribers returns how many StreamEvents calls are open (the
// metrics gauge).
func (s *Service) StreamSubscribers() int64 { return s.streams.Load() }

// validate checks f and narrows its sub-merchants to those the caller of
// ctx sees; ok is false when none is left (nothing to show).
func (f *EventFilter) validate(ctx context.Context) (ok bool, err error) {
	var v violations
	v.token("sub_mchid", f.SubMchID, 32, false)
	for _, t := range f.Types {
		if !t.Valid() {
			v.add("types", "unknown event type %q", t)
		}
	}
	f.PageSize = pageSize(&v, f.PageSize)
	if err := v.err(); err != nil {
		return false, err
	}
	f.SubMchIDs, ok = visibleSubMchIDs(ctx, f.SubMchID, f.SubMchIDs)
	return ok, nil
}

// ListEvents returns the events after f.AfterSequence, in sequence order,
// of the sub-merchants the caller sees, and the cursor to go on from: the
// sequence of the last event returned, or f.AfterSequence when none was.
// A cursor older than the oldest event kept is ErrEventCursorExpired.
func (s *Service) ListEvents(ctx context.Context, f EventFilter) ([]Event, uint64, error) {
	ok, err := f.validate(ctx)
	if err != nil || !ok {
		return nil, f.AfterSequence, err
	}
	es, err := s.store.ListEvents(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	next := f.AfterSequence
	if len(es) > 0 {
		next = es[len(es)-1].Sequence
	}
	return es, next, nil
}

// GetEvent returns the event with id as appended. Another sub-merchant's
// is ErrEventNotFound.
func (s *Service) GetEvent(ctx context.Context, id string) (Event, error) {
	var v violations
	v.token("id", id, 64, true)
	if err := v.err(); err != nil {
		return Event{}, err
	}
	e, err := s.store.EventByID(ctx, id)
	if err == nil && !CallerFrom(ctx).Sees(e.SubMchID) {
		err = ErrNotFound
	}
	if err != nil {
		return Event{}, fmt.Errorf("get event: %w", notFoundAs(err, ErrEventNotFound))
	}
	return e, nil
}

// StreamEvents sends the events after f.AfterSequence that f selects, in
// sequence order, then each one as it commits, until ctx ends or send
// fails. It waits for the store's commits, never polls. A reader that
// reconnects with the last sequence it received misses nothing and sees
// nothing twice. f.PageSize is ignored.
func (s *Service) StreamEvents(ctx context.Context, f EventFilter, send func(Event) error) error {
	f.PageSize = 0
	ok, err := f.validate(ctx)
	if err != nil {
		return err
	}
	s.streams.Add(1)
	defer s.streams.Add(-1)
	if !ok {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ending:
			return ErrShuttingDown
		}
	}
	f.PageSize = MaxPageSize
	for {
		// Taken before the read: a commit after the read closes it.
		wake := s.store.EventsCommitted()
		es, err := s.store.ListEvents(ctx, f)
		if err != nil {
			return fmt.Errorf("stream events: %w", err)
		}
		for _, e := range es {
			if e.Sequence <= f.AfterSequence {
				// The store broke its promise: never show a reader less.
				return fmt.Errorf("stream events: sequence %d after %d", e.Sequence, f.AfterSequence)
			}
			if err := send(e); err != nil {
				return err
			}
			f.AfterSequence = e.Sequence
		}
		if len(es) == f.PageSize {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ending:
			return ErrShuttingDown
		case <-wake:
		}
	}
}

// ErrShuttingDown ends the event streams of a papayd that stops. Reconnect
// (to it after its restart, or to another replica) with the last sequence
// received: nothing is missed.
var ErrShuttingDown = &Error{Kind: KindUnavailable, Reason: "SHUTTING_DOWN",
	Message: "papayd is shutting down: reconnect with after_sequence set to the last event's sequence"}

// pruneEvents deletes the events older than the retention, in batches,
// and returns how many it deleted.
func (s *Service) pruneEvents(ctx context.Context) (int, error) {
	before := s.clock.Now().Add(-s.cfg.Reconcile.EventRetention)
	total := 0
	for {
		n, err := s.store.PruneEvents(ctx, before, pruneBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		if n < pruneBatch || ctx.Err() != nil {
			return total, nil
		}
	}
}
