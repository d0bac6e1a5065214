package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// keyColumns are the columns of service.StoredKey, in the order scanKey
// reads them.
const keyColumns = `id, name, scopes, sub_mchids, secret_hash, rate_limit,
	create_time, expire_time, last_used_time, revoke_time`

// scanKey reads a row of keyColumns.
func scanKey(row rowScanner) (service.StoredKey, error) {
	var k service.StoredKey
	var hash []byte
	err := row.Scan(&k.ID, &k.Name, jsonDest[service.Scope]{&k.Scopes}, jsonDest[string]{&k.SubMchIDs}, &hash,
		&k.RateLimit, timeDest{&k.CreateTime}, timeDest{&k.ExpireTime}, timeDest{&k.LastUsedTime}, timeDest{&k.RevokeTime})
	if err == nil && copy(k.Hash[:], hash) != len(k.Hash) {
		err = fmt.Errorf("key %s: secret hash of %d bytes", k.ID, len(hash))
	}
	return k, err
}

const createKeySQL = `INSERT INTO api_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// CreateKey inserts k. It returns service.ErrConflict when its id is
// recorded already.
func (t *tx) CreateKey(ctx context.Context, k service.StoredKey) error {
	_, err := t.q.ExecContext(ctx, createKeySQL, k.ID, k.Name, jsonArg[service.Scope](k.Scopes),
		jsonArg[string](k.SubMchIDs), k.Hash[:], k.RateLimit, timeArg(k.CreateTime), timeArg(k.ExpireTime),
		timeArg(k.LastUsedTime), timeArg(k.RevokeTime))
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, conflictOr(err))
	}
	return nil
}

// revokeKeySQL keeps the first revocation's time.
const revokeKeySQL = `UPDATE api_keys SET revoke_time = COALESCE(revoke_time, ?) WHERE id = ?
RETURNING ` + keyColumns

// RevokeKey sets the key's revoke time to at unless it is revoked already,
// and returns the key. It returns service.ErrNotFound when there is none.
func (t *tx) RevokeKey(ctx context.Context, id string, at time.Time) (service.APIKey, error) {
	k, err := scanKey(t.q.QueryRowContext(ctx, revokeKeySQL, timeArg(at), id))
	if errors.Is(err, sql.ErrNoRows) {
		err = service.ErrNotFound
	}
	if err != nil {
		return service.APIKey{}, fmt.Errorf("revoke key %s: %w", id, err)
	}
	return k.APIKey, nil
}

const keysSQL = `SELECT ` + keyColumns + ` FROM api_keys ORDER BY id`

// Keys returns every key, with its secret hash, in id order.
func (r reader) Keys(ctx context.Context) ([]service.StoredKey, error) {
	rows, err := r.q.QueryContext(ctx, keysSQL)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer rows.Close()
	var keys []service.StoredKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return keys, nil
}

const touchKeySQL = `UPDATE api_keys SET last_used_time = ?1
WHERE id = ?2 AND (last_used_time IS NULL OR last_used_time < ?1)`

// TouchKey records that key id was used at t, unless a later use is
// recorded. Like RecordWeChatCall, it returns once the write is queued:
// it joins the next group commit, and a failed write is dropped (it costs
// a stale last-used time). An unknown id changes nothing. It must not be
// called from inside InTx.
func (db *DB) TouchKey(ctx context.Context, id string, t time.Time) error {
	err := db.writer.post(ctx, func(w *tx) error {
		_, err := w.q.ExecContext(context.Background(), touchKeySQL, timeArg(t), id)
		return err
	}, func(error) {})
	if err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	return nil
}

// jsonArg binds a list of strings to a JSON array column; nil is [].
type jsonArg[T ~string] []T

// Value implements driver.Valuer.
func (a jsonArg[T]) Value() (driver.Value, error) {
	if a == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]T(a))
	return string(b), err
}

// jsonDest scans a JSON array column into *p; [] is nil.
type jsonDest[T ~string] struct{ p *[]T }

// Scan implements sql.Scanner.
func (d jsonDest[T]) Scan(src any) error {
	s, ok := src.(string)
	if !ok {
		return fmt.Errorf("JSON column holds %T, want TEXT", src)
	}
	var v []T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return err
	}
	if len(v) == 0 {
		v = nil
	}
	*d.p = v
	return nil
}
