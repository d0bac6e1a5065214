package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

var (
	_ service.WebhookReader = (*DB)(nil)
	_ service.WebhookReader = (*tx)(nil)
	_ service.WebhookWriter = (*tx)(nil)
)

// webhookEndpointColumns are the columns of service.StoredWebhookEndpoint,
// in the order scanWebhookEndpoint reads them.
const webhookEndpointColumns = `id, url, event_types, sub_mchids, secret, state, disable_reason, cursor,
	create_time, update_time`

// scanWebhookEndpoint reads a row of webhookEndpointColumns. The secret is
// stored in the clear, as internal/db stores it (the signer needs it; see
// service.StoredWebhookEndpoint); no error of this file quotes it.
func scanWebhookEndpoint(row pgx.Row) (service.StoredWebhookEndpoint, error) {
	var e service.StoredWebhookEndpoint
	err := row.Scan(&e.ID, &e.URL, jsonDest[service.EventType]{&e.EventTypes}, jsonDest[string]{&e.SubMchIDs},
		&e.Secret, &e.State, &e.DisableReason, &e.Cursor, timeDest{&e.CreateTime}, timeDest{&e.UpdateTime})
	return e, err
}

const createWebhookEndpointSQL = `INSERT INTO webhook_endpoints (` + webhookEndpointColumns + `) VALUES (
	@id, @url, @event_types, @sub_mchids, @secret, @state, @disable_reason, @cursor,
	@create_time, @update_time)`

// CreateWebhookEndpoint inserts e. It returns service.ErrConflict when its
// id is recorded already.
func (t *tx) CreateWebhookEndpoint(ctx context.Context, e service.StoredWebhookEndpoint) error {
	_, err := t.q.Exec(ctx, createWebhookEndpointSQL, pgx.NamedArgs{
		"id": e.ID, "url": e.URL, "event_types": jsonArg[service.EventType]{e.EventTypes},
		"sub_mchids": jsonArg[string]{e.SubMchIDs}, "secret": e.Secret, "state": string(e.State),
		"disable_reason": e.DisableReason, "cursor": int64(e.Cursor),
		"create_time": timeArg(e.CreateTime), "update_time": timeArg(e.UpdateTime),
	})
	if err != nil {
		return fmt.Errorf("insert webhook endpoint %s: %w", e.ID, conflictOr(err))
	}
	return nil
}

// updateWebhookEndpointSQL writes what an endpoint's life changes; its URL,
// filters, secret and create time are fixed at creation, as in internal/db.
const updateWebhookEndpointSQL = `UPDATE webhook_endpoints
SET state = @state, disable_reason = @disable_reason, cursor = @cursor, update_time = @update_time
WHERE id = @id`

// UpdateWebhookEndpoint overwrites the state, disable reason, cursor and
// update time of the endpoint e.ID. It returns service.ErrNotFound when
// there is none.
func (t *tx) UpdateWebhookEndpoint(ctx context.Context, e service.WebhookEndpoint) error {
	tag, err := t.q.Exec(ctx, updateWebhookEndpointSQL, pgx.NamedArgs{
		"state": string(e.State), "disable_reason": e.DisableReason, "cursor": int64(e.Cursor),
		"update_time": timeArg(e.UpdateTime), "id": e.ID,
	})
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

const webhookEndpointSQL = `SELECT ` + webhookEndpointColumns + ` FROM webhook_endpoints WHERE id = $1`

// WebhookEndpoint returns the endpoint id, deleted or not, with its secret,
// or service.ErrNotFound.
func (r reader) WebhookEndpoint(ctx context.Context, id string) (service.StoredWebhookEndpoint, error) {
	e, err := scanWebhookEndpoint(r.q.QueryRow(ctx, webhookEndpointSQL, id))
	if err != nil {
		return service.StoredWebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, notFoundOr(err))
	}
	return e, nil
}

// webhookEndpointsSQL orders ties of create_time by id in byte order
// (COLLATE "C"), as SQLite compares text, whatever the database's
// collation.
const webhookEndpointsSQL = `SELECT ` + webhookEndpointColumns + `
FROM webhook_endpoints ORDER BY create_time, id COLLATE "C"`

// WebhookEndpoints returns every endpoint, deleted ones included, with its
// secret, in creation order.
func (r reader) WebhookEndpoints(ctx context.Context) ([]service.StoredWebhookEndpoint, error) {
	es, err := queryRows(ctx, r.q, webhookEndpointsSQL, nil,
		func(row pgx.Row) (service.StoredWebhookEndpoint, int64, error) {
			e, err := scanWebhookEndpoint(row)
			return e, 0, err
		})
	if err != nil {
		return nil, fmt.Errorf("webhook endpoints: %w", err)
	}
	return es, nil
}

// webhookDeliveryColumns are the columns of service.WebhookDelivery, in
// the order scanWebhookDelivery reads them.
const webhookDeliveryColumns = `id, endpoint_id, event_id, event_sequence, event_type, sub_mchid, state, attempts,
	next_attempt_time, last_attempt_time, last_status, last_error, create_time, update_time`

// scanWebhookDelivery reads a row of webhookDeliveryColumns.
func scanWebhookDelivery(row pgx.Row) (d service.WebhookDelivery, id int64, err error) {
	err = row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventSequence, &d.EventType, &d.SubMchID, &d.State,
		&d.Attempts, timeDest{&d.NextAttemptTime}, timeDest{&d.LastAttemptTime}, &d.LastStatus, &d.LastError,
		timeDest{&d.CreateTime}, timeDest{&d.UpdateTime})
	return d, d.ID, err
}

const createWebhookDeliverySQL = `INSERT INTO webhook_deliveries (endpoint_id, event_id, event_sequence, event_type,
	sub_mchid, state, attempts, next_attempt_time, last_attempt_time, last_status, last_error, create_time, update_time)
VALUES (@endpoint_id, @event_id, @event_sequence, @event_type,
	@sub_mchid, @state, @attempts, @next_attempt_time, @last_attempt_time, @last_status, @last_error, @create_time,
	@update_time)
RETURNING id`

// CreateWebhookDelivery inserts d (its ID is ignored) and returns the id
// the store assigned. It returns service.ErrConflict when the endpoint has
// a delivery of the event already.
func (t *tx) CreateWebhookDelivery(ctx context.Context, d service.WebhookDelivery) (int64, error) {
	var id int64
	err := t.q.QueryRow(ctx, createWebhookDeliverySQL, pgx.NamedArgs{
		"endpoint_id": d.EndpointID, "event_id": d.EventID, "event_sequence": int64(d.EventSequence),
		"event_type": string(d.EventType), "sub_mchid": d.SubMchID, "state": string(d.State),
		"attempts": d.Attempts, "next_attempt_time": timeArg(d.NextAttemptTime),
		"last_attempt_time": timeArg(d.LastAttemptTime), "last_status": d.LastStatus, "last_error": d.LastError,
		"create_time": timeArg(d.CreateTime), "update_time": timeArg(d.UpdateTime),
	}).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert webhook delivery of %s to %s: %w", d.EventID, d.EndpointID, conflictOr(err))
	}
	return id, nil
}

// updateWebhookDeliverySQL writes what a delivery's attempts change; the
// endpoint, the event and the create time are fixed, as in internal/db.
const updateWebhookDeliverySQL = `UPDATE webhook_deliveries SET state = @state, attempts = @attempts,
	next_attempt_time = @next_attempt_time, last_attempt_time = @last_attempt_time, last_status = @last_status,
	last_error = @last_error, update_time = @update_time
WHERE id = @id`

// UpdateWebhookDelivery overwrites the state, attempts, times, last status
// and last error of the delivery d.ID. It returns service.ErrNotFound when
// there is none.
func (t *tx) UpdateWebhookDelivery(ctx context.Context, d service.WebhookDelivery) error {
	tag, err := t.q.Exec(ctx, updateWebhookDeliverySQL, pgx.NamedArgs{
		"state": string(d.State), "attempts": d.Attempts, "next_attempt_time": timeArg(d.NextAttemptTime),
		"last_attempt_time": timeArg(d.LastAttemptTime), "last_status": d.LastStatus, "last_error": d.LastError,
		"update_time": timeArg(d.UpdateTime), "id": d.ID,
	})
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update webhook delivery %d: %w", d.ID, err)
	}
	return nil
}

// listWebhookDeliveriesSQL starts the query of ListWebhookDeliveries, which
// appends the terms of the filter fields set and the order. The
// webhook_deliveries_endpoint index (endpoint_id, state, event_sequence)
// serves the webhook engine's head of line (an endpoint's PENDING
// deliveries in event order, LIMIT its batch) and ?state=FAILED without a
// sort (webhook_test.go checks it). webhook_deliveries_event serves
// Redeliver's (an event's deliveries). Ties of event_sequence (one event
// to several endpoints) go in byte order of endpoint_id (COLLATE "C"), as
// SQLite compares text, whatever the database's collation; with
// endpoint_id fixed there are none, and that tiebreaker is left out: the
// planner cannot tell that a fixed column under another collation is still
// constant, and would sort the whole scan for it. LIMIT NULL is no limit.
const (
	listWebhookDeliveriesSQL         = `SELECT ` + webhookDeliveryColumns + ` FROM webhook_deliveries WHERE event_sequence > @after`
	listWebhookDeliveriesEndpointSQL = ` AND endpoint_id = @endpoint_id`
	listWebhookDeliveriesEventSQL    = ` AND event_id = @event_id`
	listWebhookDeliveriesStateSQL    = ` AND state = @state`
	listWebhookDeliveriesOrderSQL    = ` ORDER BY event_sequence`
	listWebhookDeliveriesTieSQL      = `, endpoint_id COLLATE "C"`
	listWebhookDeliveriesLimitSQL    = ` LIMIT @limit`
)

// ListWebhookDeliveries returns the deliveries f selects (each of its
// fields when set: the endpoint, the event, the state, the event sequences
// after f.AfterSequence) in event sequence order, then endpoint id, at most
// f.PageSize of them (0 or less: all).
func (r reader) ListWebhookDeliveries(ctx context.Context, f service.WebhookDeliveryFilter) ([]service.WebhookDelivery, error) {
	query, args := listWebhookDeliveriesQuery(f)
	ds, err := queryRows(ctx, r.q, query, []any{args}, scanWebhookDelivery)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return ds, nil
}

// listWebhookDeliveriesQuery returns the query of ListWebhookDeliveries for
// f and its arguments.
func listWebhookDeliveriesQuery(f service.WebhookDeliveryFilter) (string, pgx.NamedArgs) {
	query := listWebhookDeliveriesSQL
	// No sequence is above math.MaxInt64, so a cursor there selects nothing.
	args := pgx.NamedArgs{"after": int64(min(f.AfterSequence, math.MaxInt64))}
	if f.EndpointID != "" {
		query += listWebhookDeliveriesEndpointSQL
		args["endpoint_id"] = f.EndpointID
	}
	if f.EventID != "" {
		query += listWebhookDeliveriesEventSQL
		args["event_id"] = f.EventID
	}
	if f.State != "" {
		query += listWebhookDeliveriesStateSQL
		args["state"] = string(f.State)
	}
	query += listWebhookDeliveriesOrderSQL
	if f.EndpointID == "" {
		query += listWebhookDeliveriesTieSQL
	}
	query += listWebhookDeliveriesLimitSQL
	if f.PageSize > 0 {
		args["limit"] = int64(f.PageSize)
	} else {
		args["limit"] = nil // LIMIT NULL: all
	}
	return query, args
}
