package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// The outbox. Sequence order is commit order (see "Event sequences" in the
// package's DESIGN): AppendEvent only buffers; flushEvents, run by InTx just
// before COMMIT, numbers and inserts the buffer under eventsLock. The
// wake-ups of EventsCommitted are in eventhub.go.

// eventsLock is the key of the transaction-level advisory lock that
// flushEvents holds from drawing its sequences to COMMIT: any constant,
// this one is "papayd/events" in ASCII, truncated.
const eventsLock int64 = 0x7061706179642f65

// eventsChannel is the NOTIFY channel of the flushes; the payload is the
// highest sequence the transaction appended.
const eventsChannel = "papayd_events"

// eventResource is the JSON of an event's record, as internal/db writes it:
// {"agreement":…}, {"charge":…}, {"anomaly":…} or {"refund":…}.
type eventResource struct {
	Agreement *service.Agreement `json:"agreement,omitempty"`
	Charge    *service.Charge    `json:"charge,omitempty"`
	Anomaly   *service.Anomaly   `json:"anomaly,omitempty"`
	Refund    *service.Refund    `json:"refund,omitempty"`
}

// pendingEvent is an appended event waiting for the flush.
type pendingEvent struct {
	id         string
	typ        service.EventType
	createTime int64
	subMchID   string
	resource   string
}

var eventIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newEventID returns "evt_" and 26 random base32 characters (128 bits).
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return "evt_" + strings.ToLower(eventIDEncoding.EncodeToString(b[:]))
}

// AppendEvent buffers e with a new id; InTx inserts it, numbered, just
// before COMMIT. A create time outside the storable years is refused here,
// not at the flush.
func (t *tx) AppendEvent(ctx context.Context, e service.Event) error {
	res, err := json.Marshal(eventResource{Agreement: e.Agreement, Charge: e.Charge, Anomaly: e.Anomaly, Refund: e.Refund})
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.Type, err)
	}
	at, err := timeArg(e.CreateTime).Int64Value()
	if err != nil {
		return fmt.Errorf("append event %s: %w", e.Type, err)
	}
	if !at.Valid {
		return fmt.Errorf("append event %s: no create time", e.Type)
	}
	t.events = append(t.events, pendingEvent{id: newEventID(), typ: e.Type, createTime: at.Int64,
		subMchID: e.SubMchID, resource: string(res)})
	return nil
}

const (
	lockEventsSQL  = `SELECT pg_advisory_xact_lock($1)`
	insertEventSQL = `INSERT INTO events (sequence, id, type, create_time, sub_mchid, resource)
VALUES (nextval('events_sequence'), $1, $2, $3, $4, $5) RETURNING sequence`
	// The payload is computed in SQL: the sequences are known only
	// server-side until the batch's results are read.
	notifyEventsSQL = `SELECT pg_notify($1, currval('events_sequence')::text)`
)

// flushEvents inserts the buffered events, if any, and returns the highest
// sequence it drew (0 when there were none). It takes eventsLock first and
// the lock is held until the transaction ends, so that the next flusher
// draws its numbers after this transaction committed or rolled back. The
// lock, the inserts (in append order) and the NOTIFY go in one round trip.
func (t *tx) flushEvents(ctx context.Context, ptx pgx.Tx) (uint64, error) {
	if len(t.events) == 0 {
		return 0, nil
	}
	var b pgx.Batch
	b.Queue(lockEventsSQL, eventsLock)
	var last int64
	for _, e := range t.events {
		b.Queue(insertEventSQL, e.id, string(e.typ), e.createTime, e.subMchID, e.resource).QueryRow(func(row pgx.Row) error {
			return row.Scan(&last)
		})
	}
	b.Queue(notifyEventsSQL, eventsChannel)
	if err := ptx.SendBatch(ctx, &b).Close(); err != nil {
		return 0, fmt.Errorf("append %d events: %w", len(t.events), conflictOr(err))
	}
	return uint64(last), nil
}

// eventTypes returns the types of the buffered events, for ObserveEvents.
func (t *tx) eventTypes() []service.EventType {
	types := make([]service.EventType, len(t.events))
	for i, e := range t.events {
		types[i] = e.typ
	}
	return types
}

// eventColumns are an event's columns; eventHeadColumns those without its
// resource.
const (
	eventHeadColumns = `sequence, id, type, create_time, sub_mchid`
	eventColumns     = eventHeadColumns + `, resource`
)

// scanEvent reads a row of eventColumns.
func scanEvent(row pgx.Row) (service.Event, error) {
	var e service.Event
	var seq int64
	var typ, res string
	if err := row.Scan(&seq, &e.ID, &typ, timeDest{&e.CreateTime}, &e.SubMchID, &res); err != nil {
		return e, err
	}
	e.Sequence, e.Type = uint64(seq), service.EventType(typ)
	return e, decodeResource(&e, res)
}

// decodeResource sets e's resource from its JSON.
func decodeResource(e *service.Event, res string) error {
	var r eventResource
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		return fmt.Errorf("event %s resource: %w", e.ID, err)
	}
	e.Agreement, e.Charge, e.Anomaly, e.Refund = r.Agreement, r.Charge, r.Anomaly, r.Refund
	return nil
}

// listEventsSQL reads the pruning horizon and a page of events in one
// statement, hence one snapshot: the horizon's row always comes back, with
// sequence 0 (never drawn) when the page is empty. The page is a prefix of
// the committed sequences after $1 (commit order), read in index order.
// listEventHeadsSQL is listEventsSQL without the resources.
const (
	listEventsSelectSQL = `SELECT h.pruned_through, coalesce(e.sequence, 0), coalesce(e.id, ''), coalesce(e.type, ''),
	e.create_time, coalesce(e.sub_mchid, ''), `
	listEventsFromSQL = `
FROM event_horizon h LEFT JOIN LATERAL (
	SELECT `
	listEventsAfterSQL = ` FROM events WHERE sequence > @after`
	listEventsSQL      = listEventsSelectSQL + `coalesce(e.resource, '{}')` + listEventsFromSQL + eventColumns + listEventsAfterSQL
	listEventHeadsSQL  = listEventsSelectSQL + `''` + listEventsFromSQL + eventHeadColumns + listEventsAfterSQL
	listEventsTypesSQL = ` AND type = ANY(@types)`
	listEventsSubsSQL  = ` AND sub_mchid = ANY(@subs)`
	listEventsSubSQL   = ` AND sub_mchid = @sub`
	listEventsEndSQL   = `
	ORDER BY sequence LIMIT @limit
) e ON true
WHERE h.id = 1
ORDER BY e.sequence`
)

// ListEvents returns up to f.PageSize committed events after
// f.AfterSequence, in sequence order, of f.Types, f.SubMchIDs and
// f.SubMchID (each when not empty). A positive cursor below the last
// pruned sequence is service.ErrEventCursorExpired.
func (db *DB) ListEvents(ctx context.Context, f service.EventFilter) ([]service.Event, error) {
	after := int64(min(f.AfterSequence, math.MaxInt64))
	limit := f.PageSize
	if limit <= 0 {
		limit = service.DefaultPageSize
	}
	query := listEventsSQL
	if f.WithoutResources {
		query = listEventHeadsSQL
	}
	args := pgx.NamedArgs{"after": after, "limit": limit}
	if len(f.Types) > 0 {
		types := make([]string, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		query += listEventsTypesSQL
		args["types"] = types
	}
	if len(f.SubMchIDs) > 0 {
		query += listEventsSubsSQL
		args["subs"] = f.SubMchIDs
	}
	if f.SubMchID != "" {
		query += listEventsSubSQL
		args["sub"] = f.SubMchID
	}
	query += listEventsEndSQL
	rows, err := db.pool.Query(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var pruned int64
	var es []service.Event
	for rows.Next() {
		var e service.Event
		var seq int64
		var typ, res string
		if err := rows.Scan(&pruned, &seq, &e.ID, &typ, timeDest{&e.CreateTime}, &e.SubMchID, &res); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if seq == 0 {
			continue // the horizon's row of an empty page
		}
		e.Sequence, e.Type = uint64(seq), service.EventType(typ)
		if f.WithoutResources {
			es = append(es, e)
			continue
		}
		if err := decodeResource(&e, res); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if f.AfterSequence > 0 && f.AfterSequence < uint64(pruned) {
		return nil, service.ErrEventCursorExpired
	}
	return es, nil
}

const eventByIDSQL = `SELECT ` + eventColumns + ` FROM events WHERE id = $1`

// EventByID returns the event with id; service.ErrNotFound when there is
// none.
func (db *DB) EventByID(ctx context.Context, id string) (service.Event, error) {
	e, err := scanEvent(db.pool.QueryRow(ctx, eventByIDSQL, id))
	if err != nil {
		return service.Event{}, fmt.Errorf("event %s: %w", id, notFoundOr(err))
	}
	return e, nil
}

const (
	oldestEventsSQL     = `SELECT sequence, create_time FROM events ORDER BY sequence LIMIT $1`
	deleteEventsSQL     = `DELETE FROM events WHERE sequence <= $1`
	setPrunedThroughSQL = `UPDATE event_horizon SET pruned_through = greatest(pruned_through, $1) WHERE id = 1`
)

// PruneEvents deletes the oldest events, up to limit, as long as they were
// created before before: always a prefix of the sequences, so that one
// number, pruned_through, says which cursors are expired. It deletes and
// raises pruned_through in one transaction, so ListEvents (one snapshot)
// sees both or neither. READ COMMITTED, not SERIALIZABLE: the prefix it
// reads is committed and below every sequence still to commit, so no
// appender conflicts with it; two concurrent prunes delete each row once
// (the second waits for the first's row locks) and keep the highest
// horizon.
func (db *DB) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	var deleted int
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ptx pgx.Tx) error {
		rows, err := ptx.Query(ctx, oldestEventsSQL, limit)
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
		}
		rows.Close()
		if err := rows.Err(); err != nil || through == 0 {
			return err
		}
		tag, err := ptx.Exec(ctx, deleteEventsSQL, through)
		if err != nil {
			return err
		}
		deleted = int(tag.RowsAffected())
		_, err = ptx.Exec(ctx, setPrunedThroughSQL, through)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return deleted, nil
}
