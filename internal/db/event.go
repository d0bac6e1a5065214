package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// Sequence order is commit order. Every write transaction runs on the one
// writer goroutine (batch.go), and batches commit one at a time: a row's
// sequence, assigned by SQLite at INSERT (AUTOINCREMENT: above every
// number ever given), is therefore above that of every row committed
// before it, and below that of every row committed after. A reader of the
// WAL sees a snapshot at a commit boundary, so it never finds a gap that a
// later commit fills.
//
// Readers are kept safe anyway: they list only sequences up to the
// writer's watermark, the highest sequence of the batch being committed,
// raised just before its commit (so that a reader that sees a batch's
// writes lists its events too). Were sequences ever handed out before the
// write lock (a counter in the caller), the watermark would still be read
// in commit order, and TestEventsInCommitOrder shows a reader then misses
// events, so such a change cannot pass unnoticed.

// eventResource is the JSON of an event's record.
type eventResource struct {
	Agreement *service.Agreement `json:"agreement,omitempty"`
	Charge    *service.Charge    `json:"charge,omitempty"`
	Anomaly   *service.Anomaly   `json:"anomaly,omitempty"`
	Refund    *service.Refund    `json:"refund,omitempty"`
}

// events is the writer's side of the outbox: the watermark and the
// channel that wakes readers waiting for a commit.
type events struct {
	mu        sync.Mutex
	committed uint64        // the highest sequence committed
	wake      chan struct{} // closed and replaced by each commit appending events
	// observe, when set, is told the types each commit appended (metrics).
	observe func(types []service.EventType)
	// recent are the events of the latest commits, by sequence modulo its
	// length (see recentEvents).
	recent []service.Event
}

// recentEvents is how many of the latest committed events the writer
// keeps decoded (about 1.5 KiB each). Readers of the outbox's head (the
// event stream, webhook deliveries) list mostly events this process just
// appended: ListEvents takes their resources from here instead of decoding
// the JSON it stored. Events are never updated, so a kept event is exact:
// the rows, and with them the filters, the watermark and the pruning, still
// come from the database; only an event whose sequence and id match a kept
// one takes its resources from it.
const recentEvents = 4096

func newEvents(committed uint64) *events {
	return &events{committed: committed, wake: make(chan struct{}), recent: make([]service.Event, recentEvents)}
}

// keptResources sets e's resources from the kept event of its sequence,
// reporting whether there was one with e's id. The resources are copies:
// the caller may change them.
func (e *events) keptResources(ev *service.Event) bool {
	e.mu.Lock()
	k := e.recent[ev.Sequence%uint64(len(e.recent))]
	e.mu.Unlock()
	if k.Sequence != ev.Sequence || k.ID != ev.ID {
		return false
	}
	ev.Agreement, ev.Charge, ev.Anomaly, ev.Refund = copyResources(k)
	return true
}

// copyResources returns copies of e's resources, sharing nothing mutable.
func copyResources(e service.Event) (*service.Agreement, *service.Charge, *service.Anomaly, *service.Refund) {
	return copyOf(e.Agreement, nil), copyOf(e.Charge, cloneCharge), copyOf(e.Anomaly, nil), copyOf(e.Refund, nil)
}

// copyOf returns a pointer to a copy of *p (deepened by clone when set),
// or nil.
func copyOf[T any](p *T, clone func(T) T) *T {
	if p == nil {
		return nil
	}
	v := *p
	if clone != nil {
		v = clone(v)
	}
	return &v
}

// watermark returns the highest sequence a reader may be shown.
func (e *events) watermark() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.committed
}

// admit lets readers list sequences up to through: the writer's batch about
// to commit.
func (e *events) admit(through uint64) {
	e.mu.Lock()
	e.committed = max(e.committed, through)
	e.mu.Unlock()
}

// published records a commit that appended evs, up to sequence through,
// keeps them, and wakes the readers.
func (e *events) published(through uint64, evs []service.Event) {
	e.mu.Lock()
	e.committed = max(e.committed, through)
	for _, ev := range evs {
		e.recent[ev.Sequence%uint64(len(e.recent))] = ev
	}
	close(e.wake)
	e.wake = make(chan struct{})
	obs := e.observe
	e.mu.Unlock()
	if obs != nil {
		types := make([]service.EventType, len(evs))
		for i, ev := range evs {
			types[i] = ev.Type
		}
		obs(types)
	}
}

// EventsCommitted returns a channel closed by the next commit that appends
// an event.
func (db *DB) EventsCommitted() <-chan struct{} {
	db.writer.events.mu.Lock()
	defer db.writer.events.mu.Unlock()
	return db.writer.events.wake
}

// ObserveEvents has fn told, after each commit that appended events, their
// types. fn runs on the writer and must not block.
func (db *DB) ObserveEvents(fn func(types []service.EventType)) {
	db.writer.events.mu.Lock()
	defer db.writer.events.mu.Unlock()
	db.writer.events.observe = fn
}

const maxEventSequenceSQL = `SELECT coalesce(max(sequence), 0) FROM events`

var eventIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newEventID returns "evt_" and 26 random base32 characters (128 bits).
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + strings.ToLower(eventIDEncoding.EncodeToString(b[:]))
}

const insertEventSQL = `INSERT INTO events (id, type, create_time, sub_mchid, resource) VALUES (?, ?, ?, ?, ?)`

// AppendEvent appends e with a new id; SQLite assigns its sequence.
func (t *tx) AppendEvent(ctx context.Context, e service.Event) error {
	res, err := json.Marshal(eventResource{Agreement: e.Agreement, Charge: e.Charge, Anomaly: e.Anomaly, Refund: e.Refund})
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.Type, err)
	}
	id := newEventID()
	r, err := t.q.ExecContext(ctx, insertEventSQL, id, string(e.Type), timeArg(e.CreateTime), e.SubMchID, string(res))
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.Type, err)
	}
	// The sequence is the rowid: the writer's watermark is the highest
	// one of its batch (see the comment at the top), known without a
	// query for max(sequence).
	seq, err := r.LastInsertId()
	if err != nil {
		return fmt.Errorf("append event %s: sequence: %w", e.Type, err)
	}
	kept := service.Event{ID: id, Sequence: uint64(seq), Type: e.Type, CreateTime: e.CreateTime, SubMchID: e.SubMchID}
	kept.Agreement, kept.Charge, kept.Anomaly, kept.Refund = copyResources(e)
	t.appended = append(t.appended, kept)
	t.sequence = max(t.sequence, seq)
	return nil
}

const (
	eventHeadColumns    = `sequence, id, type, create_time, sub_mchid` // an event's columns but its resource
	eventColumns        = eventHeadColumns + `, resource`
	listEventsAfterSQL  = ` FROM events WHERE sequence > :after AND sequence <= :through`
	listEventsSQL       = `SELECT ` + eventColumns + listEventsAfterSQL
	listEventHeadsSQL   = `SELECT ` + eventHeadColumns + `, ''` + listEventsAfterSQL // no resources
	listEventsTypesSQL  = ` AND type IN (SELECT value FROM json_each(:types))`
	listEventsSubsSQL   = ` AND sub_mchid IN (SELECT value FROM json_each(:subs))`
	listEventsSubSQL    = ` AND sub_mchid = :sub`
	listEventsOrderSQL  = ` ORDER BY sequence LIMIT :limit`
	eventByIDSQL        = `SELECT ` + eventColumns + ` FROM events WHERE id = ?`
	prunedThroughSQL    = `SELECT pruned_through FROM event_horizon WHERE id = 1`
	oldestEventsSQL     = `SELECT sequence, create_time FROM events ORDER BY sequence LIMIT ?`
	deleteEventsSQL     = `DELETE FROM events WHERE sequence <= ?`
	setPrunedThroughSQL = `UPDATE event_horizon SET pruned_through = ? WHERE id = 1 AND pruned_through < ?`
)

// scanEvent reads a row of eventColumns.
func scanEvent(row rowScanner) (service.Event, error) {
	var res []byte
	e, err := scanEventInto(row, &res)
	if err != nil {
		return e, err
	}
	return e, decodeResource(&e, res)
}

// scanEventInto reads a row of eventColumns, the resource's JSON into res
// (left undecoded).
func scanEventInto(row rowScanner, res any) (service.Event, error) {
	var e service.Event
	var typ string
	var seq int64
	if err := row.Scan(&seq, &e.ID, &typ, timeDest{&e.CreateTime}, &e.SubMchID, res); err != nil {
		return e, err
	}
	e.Sequence, e.Type = uint64(seq), service.EventType(typ)
	return e, nil
}

// decodeResource sets e's resources from their stored JSON.
func decodeResource(e *service.Event, res []byte) error {
	var r eventResource
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("event %s resource: %w", e.ID, err)
	}
	e.Agreement, e.Charge, e.Anomaly, e.Refund = r.Agreement, r.Charge, r.Anomaly, r.Refund
	return nil
}

// ListEvents returns up to f.PageSize committed events after
// f.AfterSequence, in sequence order (see the comment at the top). A
// positive cursor below the last pruned sequence is
// service.ErrEventCursorExpired.
func (db *DB) ListEvents(ctx context.Context, f service.EventFilter) ([]service.Event, error) {
	through := db.writer.events.watermark()
	query := listEventsSQL
	if f.WithoutResources {
		query = listEventHeadsSQL
	}
	// Sequences are below 2^63: a cursor beyond is after every event.
	args := []any{sql.Named("after", int64(min(f.AfterSequence, math.MaxInt64))), sql.Named("through", int64(through))}
	if len(f.Types) > 0 {
		b, _ := json.Marshal(f.Types)
		query += listEventsTypesSQL
		args = append(args, sql.Named("types", string(b)))
	}
	if len(f.SubMchIDs) > 0 {
		b, _ := json.Marshal(f.SubMchIDs)
		query += listEventsSubsSQL
		args = append(args, sql.Named("subs", string(b)))
	}
	if f.SubMchID != "" {
		query += listEventsSubSQL
		args = append(args, sql.Named("sub", f.SubMchID))
	}
	limit := f.PageSize
	if limit <= 0 {
		limit = service.DefaultPageSize
	}
	query += listEventsOrderSQL
	args = append(args, sql.Named("limit", limit))
	rows, err := db.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var es []service.Event
	for rows.Next() {
		var res sql.RawBytes // decoded only for an event not kept
		e, err := scanEventInto(rows, &res)
		if err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if !f.WithoutResources && !db.writer.events.keptResources(&e) {
			if err := decodeResource(&e, res); err != nil {
				return nil, fmt.Errorf("list events: %w", err)
			}
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	// Checked after the read: a prune between the two is seen, never a
	// page with a silent gap.
	if f.AfterSequence > 0 {
		var pruned int64
		if err := db.q.QueryRowContext(ctx, prunedThroughSQL).Scan(&pruned); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if f.AfterSequence < uint64(pruned) {
			return nil, service.ErrEventCursorExpired
		}
	}
	return es, nil
}

// EventByID returns the event with id; service.ErrNotFound when there is
// none.
func (db *DB) EventByID(ctx context.Context, id string) (service.Event, error) {
	e, err := scanEvent(db.q.QueryRowContext(ctx, eventByIDSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return service.Event{}, service.ErrNotFound
	}
	if err != nil {
		return service.Event{}, fmt.Errorf("event %s: %w", id, err)
	}
	return e, nil
}

// PruneEvents deletes the oldest events, up to limit, as long as they were
// created before before: always a prefix of the sequence, so that one
// number, pruned_through, says which cursors are expired.
func (db *DB) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := db.writer.do(ctx, func(t *tx) error {
		rows, err := t.q.QueryContext(ctx, oldestEventsSQL, limit)
		if err != nil {
			return err
		}
		var through int64
		for rows.Next() {
			var seq int64
			var at time.Time
			if err := rows.Scan(&seq, timeDest{&at}); err != nil {
				rows.Close()
				return err
			}
			if !at.Before(before) {
				break
			}
			through = seq
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil || n == 0 {
			return err
		}
		if _, err := t.q.ExecContext(ctx, deleteEventsSQL, through); err != nil {
			return err
		}
		_, err = t.q.ExecContext(ctx, setPrunedThroughSQL, through, through)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}
