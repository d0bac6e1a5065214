package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/pagetoken"
	"github.com/papayd/papayd/internal/service"
)

const auditColumns = `time, key_id, key_name, peer, method, resource, outcome`

const insertAuditEntrySQL = `INSERT INTO audit_entries (` + auditColumns + `)
VALUES (@time, @key_id, @key_name, @peer, @method, @resource, @outcome)`

// auditArgs binds e (not its ID) to insertAuditEntrySQL.
func auditArgs(e service.AuditEntry) pgx.NamedArgs {
	return pgx.NamedArgs{"time": timeArg(e.Time), "key_id": e.KeyID, "key_name": e.KeyName,
		"peer": e.Peer, "method": e.Method, "resource": e.Resource, "outcome": e.Outcome}
}

// InsertAuditEntry appends e (its ID is ignored) inside the transaction,
// so it commits with the effect it records, or not at all.
func (t *tx) InsertAuditEntry(ctx context.Context, e service.AuditEntry) error {
	if _, err := t.q.Exec(ctx, insertAuditEntrySQL, auditArgs(e)); err != nil {
		return fmt.Errorf("insert audit entry %s %s: %w", e.Method, e.Resource, err)
	}
	return nil
}

// RecordAuditEntry appends e outside any caller's transaction, for calls
// refused before they changed anything: it returns once the row is queued
// for the writer of async.go, without waiting for its commit. A row that
// could not be written is reported to failed (which must not block). A
// time outside the storable years is refused here. It must not be called
// from inside InTx.
func (db *DB) RecordAuditEntry(ctx context.Context, e service.AuditEntry, failed func(error)) error {
	if _, err := timeArg(e.Time).Int64Value(); err != nil {
		return fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Resource, err)
	}
	err := db.async.post(ctx, asyncWrite{sql: insertAuditEntrySQL, args: []any{auditArgs(e)}, failed: func(err error) {
		if failed != nil {
			failed(fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Resource, err))
		}
	}})
	if err != nil {
		return fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Resource, err)
	}
	return nil
}

// listAuditSQL starts one page in the order (time DESC, id DESC), which
// the audit_entries_* indexes serve; the filter terms and
// listAuditOrderSQL are appended by ListAuditEntries.
const (
	listAuditSQL = `SELECT id, ` + auditColumns + `
FROM audit_entries WHERE (time, id) < (@after_time, @after_id)`
	listAuditByResourceSQL = ` AND resource = @resource`
	listAuditByKeyIDSQL    = ` AND key_id = @key_id`
	listAuditOrderSQL      = ` ORDER BY time DESC, id DESC LIMIT @limit`
)

// auditPageRow reads a row of a page of audit entries and its cursor.
func auditPageRow(row pgx.Row) (service.AuditEntry, cursor, error) {
	var e service.AuditEntry
	err := row.Scan(&e.ID, timeDest{&e.Time}, &e.KeyID, &e.KeyName, &e.Peer, &e.Method, &e.Resource, &e.Outcome)
	return e, cursor{CreateTime: e.Time.UnixNano(), ID: e.ID}, err
}

// ListAuditEntries returns one page of the audit entries f selects, newest
// first, and the token of the next page ("" on the last). f.PageSize must
// be positive. A token this package (or internal/db) did not issue, or
// issued for another filter, is service.ErrInvalidPageToken.
func (r reader) ListAuditEntries(ctx context.Context, f service.AuditFilter) ([]service.AuditEntry, string, error) {
	filter := pagetoken.Audit(f)
	after, err := pagetoken.Decode(f.PageToken, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	query := listAuditSQL
	args := pgx.NamedArgs{"after_time": after.CreateTime, "after_id": after.ID}
	if f.Resource != "" {
		query += listAuditByResourceSQL
		args["resource"] = f.Resource
	}
	if f.KeyID != "" {
		query += listAuditByKeyIDSQL
		args["key_id"] = f.KeyID
	}
	query += listAuditOrderSQL
	es, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, auditPageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	return es, next, nil
}
