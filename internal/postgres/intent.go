package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

const createIntentSQL = `INSERT INTO intents (kind, key, note, create_time)
VALUES (@kind, @key, @note, @create_time) RETURNING id`

// CreateIntent records in (its ID is ignored) and returns the id the store
// assigned. Ids are never reused, not even after DeleteIntent (an
// identity column). It returns service.ErrConflict when an open intent of
// the same kind and key exists. in.CreateTime must not be zero.
func (t *tx) CreateIntent(ctx context.Context, in service.Intent) (int64, error) {
	var id int64
	err := t.q.QueryRow(ctx, createIntentSQL, pgx.NamedArgs{
		"kind": string(in.Kind), "key": in.Key, "note": in.Note, "create_time": timeArg(in.CreateTime),
	}).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert intent %s %s: %w", in.Kind, in.Key, conflictOr(err))
	}
	return id, nil
}

const deleteIntentSQL = `DELETE FROM intents WHERE id = $1`

// DeleteIntent resolves the open intent id. It returns service.ErrNotFound
// when there is none (never recorded, or already resolved).
func (t *tx) DeleteIntent(ctx context.Context, id int64) error {
	tag, err := t.q.Exec(ctx, deleteIntentSQL, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = service.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete intent %d: %w", id, err)
	}
	return nil
}

// openIntentsSQL reads the table in id order, which is the order the
// intents were recorded in within one transaction and across the
// transactions that commit one after the other (identity numbers only
// grow). The table holds only the open intents.
const openIntentsSQL = `SELECT id, kind, key, note, create_time FROM intents ORDER BY id`

// OpenIntents returns the intents not yet resolved, oldest (first
// recorded) first. The table holds only the open intents, so the read is
// as small as what is left to resume.
func (r reader) OpenIntents(ctx context.Context) ([]service.Intent, error) {
	ins, err := queryRows(ctx, r.q, openIntentsSQL, nil, scanIntent)
	if err != nil {
		return nil, fmt.Errorf("open intents: %w", err)
	}
	return ins, nil
}

// scanIntent reads a row of openIntentsSQL.
func scanIntent(row pgx.Row) (in service.Intent, id int64, err error) {
	err = row.Scan(&in.ID, &in.Kind, &in.Key, &in.Note, timeDest{&in.CreateTime})
	return in, in.ID, err
}
