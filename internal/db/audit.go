package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/papayd/papayd/internal/pagetoken"
	"github.com/papayd/papayd/internal/service"
)

const auditColumns = `time, key_id, key_name, peer, method, resource, outcome`

const insertAuditEntrySQL = `INSERT INTO audit_entries (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`

func auditArgs(e service.AuditEntry) []any {
	return []any{timeArg(e.Time), e.KeyID, e.KeyName, e.Peer, e.Method, e.Resource, e.Outcome}
}

// InsertAuditEntry appends e (its ID is ignored) inside the transaction,
// so it commits with the effect it records, or not at all.
func (t *tx) InsertAuditEntry(ctx context.Context, e service.AuditEntry) error {
	if _, err := t.q.ExecContext(ctx, insertAuditEntrySQL, auditArgs(e)...); err != nil {
		return fmt.Errorf("insert audit entry %s %s: %w", e.Method, e.Resource, err)
	}
	return nil
}

// RecordAuditEntry appends e outside any caller's transaction: it returns
// once the row is queued for the writer (it joins the next group commit),
// for calls refused before they changed anything. A row that could not be
// written is reported to failed (which must not block). It must not be
// called from inside InTx.
func (db *DB) RecordAuditEntry(ctx context.Context, e service.AuditEntry, failed func(error)) error {
	err := db.writer.post(ctx, func(t *tx) error {
		_, err := t.q.ExecContext(context.Background(), insertAuditEntrySQL, auditArgs(e)...)
		return err
	}, func(err error) {
		if err != nil && failed != nil {
			failed(fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Resource, err))
		}
	})
	if err != nil {
		return fmt.Errorf("record audit entry %s %s: %w", e.Method, e.Resource, err)
	}
	return nil
}

// listAuditSQL starts one page in the order (time DESC, id DESC), which
// the audit_entries_* indexes serve; the filter terms and listOrderSQL's
// equivalent are appended by ListAuditEntries.
const (
	listAuditSQL = `SELECT id, ` + auditColumns + `
FROM audit_entries WHERE (time, id) < (:after_time, :after_id)`
	listAuditByResourceSQL = ` AND resource = :resource`
	listAuditByKeyIDSQL    = ` AND key_id = :key_id`
	listAuditOrderSQL      = ` ORDER BY time DESC, id DESC LIMIT :limit`
)

// auditPageRow reads a row of a page of audit entries and its cursor.
func auditPageRow(row rowScanner) (service.AuditEntry, cursor, error) {
	var e service.AuditEntry
	err := row.Scan(&e.ID, timeDest{&e.Time}, &e.KeyID, &e.KeyName, &e.Peer, &e.Method, &e.Resource, &e.Outcome)
	return e, cursor{CreateTime: e.Time.UnixNano(), ID: e.ID}, err
}

// ListAuditEntries returns one page of the audit entries f selects, newest
// first, and the token of the next page ("" on the last). f.PageSize must
// be positive; a token issued for another filter is
// service.ErrInvalidPageToken.
func (r reader) ListAuditEntries(ctx context.Context, f service.AuditFilter) ([]service.AuditEntry, string, error) {
	filter := pagetoken.Audit(f)
	after, err := pagetoken.Decode(f.PageToken, filter)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	query := listAuditSQL
	args := []any{sql.Named("after_time", after.CreateTime), sql.Named("after_id", after.ID)}
	if f.Resource != "" {
		query += listAuditByResourceSQL
		args = append(args, sql.Named("resource", f.Resource))
	}
	if f.KeyID != "" {
		query += listAuditByKeyIDSQL
		args = append(args, sql.Named("key_id", f.KeyID))
	}
	query += listAuditOrderSQL
	es, next, err := queryPage(ctx, r.q, query, args, f.PageSize, filter, auditPageRow)
	if err != nil {
		return nil, "", fmt.Errorf("list audit entries: %w", err)
	}
	return es, next, nil
}
