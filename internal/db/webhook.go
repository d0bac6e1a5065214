package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/papayd/papayd/internal/service"
)

var (
	_ service.WebhookReader = reader{}
	_ service.WebhookWriter = (*tx)(nil)
)

// webhookEndpointColumns are the columns of service.StoredWebhookEndpoint,
// in the order scanWebhookEndpoint reads them.
const webhookEndpointColumns = `id, url, event_types, sub_mchids, secret, state, disable_reason, cursor,
	create_time, update_time`

// scanWebhookEndpoint reads a row of webhookEndpointColumns.
func scanWebhookEndpoint(row rowScanner) (service.StoredWebhookEndpoint, error) {
	var e service.StoredWebhookEndpoint
	err := row.Scan(&e.ID, &e.URL, jsonDest[service.EventType]{&e.EventTypes}, jsonDest[string]{&e.SubMchIDs},
		&e.Secret, &e.State, &e.DisableReason, &e.Cursor, timeDest{&e.CreateTime}, timeDest{&e.UpdateTime})
	return e, err
}

const createWebhookEndpointSQL = `INSERT INTO webhook_endpoints (` + webhookEndpointColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateWebhookEndpoint inserts e. It returns service.ErrConflict when its
// id is recorded already.
func (t *tx) CreateWebhookEndpoint(ctx context.Context, e service.StoredWebhookEndpoint) error {
	_, err := t.q.ExecContext(ctx, createWebhookEndpointSQL, e.ID, e.URL, jsonArg[service.EventType](e.EventTypes),
		jsonArg[string](e.SubMchIDs), e.Secret, e.State, e.DisableReason, int64(e.Cursor),
		timeArg(e.CreateTime), timeArg(e.UpdateTime))
	if err != nil {
		return fmt.Errorf("insert webhook endpoint %s: %w", e.ID, conflictOr(err))
	}
	return nil
}

const updateWebhookEndpointSQL = `UPDATE webhook_endpoints
SET state = ?, disable_reason = ?, cursor = ?, update_time = ? WHERE id = ?`

// UpdateWebhookEndpoint overwrites the mutable fields of the endpoint e.ID.
// It returns service.ErrNotFound when there is none.
func (t *tx) UpdateWebhookEndpoint(ctx context.Context, e service.WebhookEndpoint) error {
	res, err := t.q.ExecContext(ctx, updateWebhookEndpointSQL, e.State, e.DisableReason, int64(e.Cursor),
		timeArg(e.UpdateTime), e.ID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("update webhook endpoint %s: %w", e.ID, err)
	}
	return nil
}

// mustAffect returns service.ErrNotFound when res changed no row.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = service.ErrNotFound
	}
	return err
}

const webhookEndpointSQL = `SELECT ` + webhookEndpointColumns + ` FROM webhook_endpoints WHERE id = ?`

// WebhookEndpoint returns the endpoint id with its secret, or
// service.ErrNotFound.
func (r reader) WebhookEndpoint(ctx context.Context, id string) (service.StoredWebhookEndpoint, error) {
	e, err := scanWebhookEndpoint(r.q.QueryRowContext(ctx, webhookEndpointSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.StoredWebhookEndpoint{}, fmt.Errorf("webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

const webhookEndpointsSQL = `SELECT ` + webhookEndpointColumns + ` FROM webhook_endpoints ORDER BY create_time, id`

// WebhookEndpoints returns every endpoint with its secret, in creation
// order.
func (r reader) WebhookEndpoints(ctx context.Context) ([]service.StoredWebhookEndpoint, error) {
	es, err := queryAll(ctx, r.q, webhookEndpointsSQL, nil, scanWebhookEndpoint)
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
func scanWebhookDelivery(row rowScanner) (service.WebhookDelivery, error) {
	var d service.WebhookDelivery
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventSequence, &d.EventType, &d.SubMchID, &d.State,
		&d.Attempts, timeDest{&d.NextAttemptTime}, timeDest{&d.LastAttemptTime}, &d.LastStatus, &d.LastError,
		timeDest{&d.CreateTime}, timeDest{&d.UpdateTime})
	return d, err
}

const createWebhookDeliverySQL = `INSERT INTO webhook_deliveries (endpoint_id, event_id, event_sequence, event_type,
	sub_mchid, state, attempts, next_attempt_time, last_attempt_time, last_status, last_error, create_time, update_time)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateWebhookDelivery inserts d and returns its id. It returns
// service.ErrConflict when the endpoint has a delivery of the event.
func (t *tx) CreateWebhookDelivery(ctx context.Context, d service.WebhookDelivery) (int64, error) {
	res, err := t.q.ExecContext(ctx, createWebhookDeliverySQL, d.EndpointID, d.EventID, int64(d.EventSequence),
		d.EventType, d.SubMchID, d.State, d.Attempts, timeArg(d.NextAttemptTime), timeArg(d.LastAttemptTime),
		d.LastStatus, d.LastError, timeArg(d.CreateTime), timeArg(d.UpdateTime))
	if err != nil {
		return 0, fmt.Errorf("insert webhook delivery of %s to %s: %w", d.EventID, d.EndpointID, conflictOr(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert webhook delivery of %s to %s: %w", d.EventID, d.EndpointID, err)
	}
	return id, nil
}

const updateWebhookDeliverySQL = `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_time = ?,
	last_attempt_time = ?, last_status = ?, last_error = ?, update_time = ? WHERE id = ?`

// UpdateWebhookDelivery overwrites the mutable fields of the delivery d.ID.
// It returns service.ErrNotFound when there is none.
func (t *tx) UpdateWebhookDelivery(ctx context.Context, d service.WebhookDelivery) error {
	res, err := t.q.ExecContext(ctx, updateWebhookDeliverySQL, d.State, d.Attempts, timeArg(d.NextAttemptTime),
		timeArg(d.LastAttemptTime), d.LastStatus, d.LastError, timeArg(d.UpdateTime), d.ID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("update webhook delivery %d: %w", d.ID, err)
	}
	return nil
}

// listWebhookDeliveriesSQL starts the query of ListWebhookDeliveries, which
// appends the terms of the filter fields set and the order; the
// webhook_deliveries_* indexes serve the engine's (endpoint, state) and
// Redeliver's (event) queries.
const (
	listWebhookDeliveriesSQL         = `SELECT ` + webhookDeliveryColumns + ` FROM webhook_deliveries WHERE event_sequence > :after`
	listWebhookDeliveriesEndpointSQL = ` AND endpoint_id = :endpoint_id`
	listWebhookDeliveriesEventSQL    = ` AND event_id = :event_id`
	listWebhookDeliveriesStateSQL    = ` AND state = :state`
	listWebhookDeliveriesOrderSQL    = ` ORDER BY event_sequence, endpoint_id LIMIT :limit` // -1: no limit
)

// ListWebhookDeliveries returns the deliveries f selects, in event
// sequence order, at most f.PageSize (0: all).
func (r reader) ListWebhookDeliveries(ctx context.Context, f service.WebhookDeliveryFilter) ([]service.WebhookDelivery, error) {
	query := listWebhookDeliveriesSQL
	args := []any{sql.Named("after", int64(min(f.AfterSequence, math.MaxInt64)))} // sequences are below 2^63
	if f.EndpointID != "" {
		query += listWebhookDeliveriesEndpointSQL
		args = append(args, sql.Named("endpoint_id", f.EndpointID))
	}
	if f.EventID != "" {
		query += listWebhookDeliveriesEventSQL
		args = append(args, sql.Named("event_id", f.EventID))
	}
	if f.State != "" {
		query += listWebhookDeliveriesStateSQL
		args = append(args, sql.Named("state", string(f.State)))
	}
	limit := int64(f.PageSize)
	if limit <= 0 {
		limit = -1
	}
	query += listWebhookDeliveriesOrderSQL
	args = append(args, sql.Named("limit", limit))
	ds, err := queryAll(ctx, r.q, query, args, scanWebhookDelivery)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return ds, nil
}

// queryAll runs query and reads every row with scan.
func queryAll[T any](ctx context.Context, q querier, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
