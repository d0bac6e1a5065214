package db

import (
	"context"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

const createIntentSQL = `INSERT INTO intents (kind, key, note, create_time) VALUES (?, ?, ?, ?)`

// CreateIntent records in (its ID is ignored) and returns the id the store
// assigned. Ids are never reused, not even after DeleteIntent. It returns
// service.ErrConflict when an open intent of the same kind and key exists.
// in.CreateTime must not be zero.
func (t *tx) CreateIntent(ctx context.Context, in service.Intent) (int64, error) {
	res, err := t.q.ExecContext(ctx, createIntentSQL, string(in.Kind), in.Key, in.Note, timeArg(in.CreateTime))
	if err != nil {
		return 0, fmt.Errorf("insert intent %s %s: %w", in.Kind, in.Key, conflictOr(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert intent %s %s: %w", in.Kind, in.Key, err)
	}
	return id, nil
}

const deleteIntentSQL = `DELETE FROM intents WHERE id = ?`

// DeleteIntent resolves the open intent id. It returns service.ErrNotFound
// when there is none (never recorded, or already resolved).
func (t *tx) DeleteIntent(ctx context.Context, id int64) error {
	res, err := t.q.ExecContext(ctx, deleteIntentSQL, id)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("delete intent %d: %w", id, err)
	}
	return nil
}

// openIntentsSQL reads the table in rowid order, which is the order the
// intents were recorded in: AUTOINCREMENT ids only grow.
const openIntentsSQL = `SELECT id, kind, key, note, create_time FROM intents ORDER BY id`

// OpenIntents returns the intents not yet resolved, oldest (first
// recorded) first. The table holds only the open intents, so the read is
// as small as what is left to resume.
func (r reader) OpenIntents(ctx context.Context) ([]service.Intent, error) {
	rows, err := r.q.QueryContext(ctx, openIntentsSQL)
	if err != nil {
		return nil, fmt.Errorf("open intents: %w", err)
	}
	defer rows.Close()
	var ins []service.Intent
	for rows.Next() {
		var in service.Intent
		if err := rows.Scan(&in.ID, &in.Kind, &in.Key, &in.Note, timeDest{&in.CreateTime}); err != nil {
			return nil, fmt.Errorf("open intents: %w", err)
		}
		ins = append(ins, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open intents: %w", err)
	}
	return ins, nil
}
