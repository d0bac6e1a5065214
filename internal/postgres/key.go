package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// keyColumns are the columns of service.StoredKey, in the order scanKey
// reads them.
const keyColumns = `id, name, scopes, sub_mchids, secret_hash, rate_limit,
	create_time, expire_time, last_used_time, revoke_time`

// scanKey reads a row of keyColumns.
func scanKey(row pgx.Row) (service.StoredKey, error) {
	var k service.StoredKey
	var scopes, subs string
	var hash []byte
	err := row.Scan(&k.ID, &k.Name, &scopes, &subs, &hash, &k.RateLimit,
		timeDest{&k.CreateTime}, timeDest{&k.ExpireTime}, timeDest{&k.LastUsedTime}, timeDest{&k.RevokeTime})
	if err != nil {
		return k, err
	}
	if k.Scopes, err = decodeKeyList[service.Scope](scopes); err != nil {
		return k, fmt.Errorf("key %s scopes: %w", k.ID, err)
	}
	if k.SubMchIDs, err = decodeKeyList[string](subs); err != nil {
		return k, fmt.Errorf("key %s sub_mchids: %w", k.ID, err)
	}
	if copy(k.Hash[:], hash) != len(k.Hash) || len(hash) != len(k.Hash) {
		return k, fmt.Errorf("key %s: secret hash of %d bytes", k.ID, len(hash))
	}
	return k, nil
}

const createKeySQL = `INSERT INTO api_keys (` + keyColumns + `) VALUES (
	@id, @name, @scopes, @sub_mchids, @secret_hash, @rate_limit,
	@create_time, @expire_time, @last_used_time, @revoke_time)`

// CreateKey inserts k. It returns service.ErrConflict when its id is
// recorded already.
func (t *tx) CreateKey(ctx context.Context, k service.StoredKey) error {
	scopes, err := encodeKeyList(k.Scopes)
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, err)
	}
	subs, err := encodeKeyList(k.SubMchIDs)
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, err)
	}
	_, err = t.q.Exec(ctx, createKeySQL, pgx.NamedArgs{
		"id": k.ID, "name": k.Name, "scopes": scopes, "sub_mchids": subs, "secret_hash": k.Hash[:],
		"rate_limit": k.RateLimit, "create_time": timeArg(k.CreateTime), "expire_time": timeArg(k.ExpireTime),
		"last_used_time": timeArg(k.LastUsedTime), "revoke_time": timeArg(k.RevokeTime),
	})
	if err != nil {
		return fmt.Errorf("insert key %s: %w", k.ID, conflictOr(err))
	}
	return nil
}

// revokeKeySQL keeps the first revocation's time.
const revokeKeySQL = `UPDATE api_keys SET revoke_time = COALESCE(revoke_time, @at) WHERE id = @id
RETURNING ` + keyColumns

// RevokeKey sets the key's revoke time to at unless it is revoked already
// (the first revocation stands), and returns the key. It returns
// service.ErrNotFound when there is none.
func (t *tx) RevokeKey(ctx context.Context, id string, at time.Time) (service.APIKey, error) {
	k, err := scanKey(t.q.QueryRow(ctx, revokeKeySQL, pgx.NamedArgs{"at": timeArg(at), "id": id}))
	if err != nil {
		return service.APIKey{}, fmt.Errorf("revoke key %s: %w", id, notFoundOr(err))
	}
	return k.APIKey, nil
}

const keysSQL = `SELECT ` + keyColumns + ` FROM api_keys ORDER BY id`

// Keys returns every key, revoked and expired ones included, with its
// secret hash, in id order.
func (r reader) Keys(ctx context.Context) ([]service.StoredKey, error) {
	rows, err := r.q.Query(ctx, keysSQL)
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

// touchKeySQL raises last_used_time, never lowers it (see async.go): the
// WHERE, re-checked on the committed row after a lock wait, leaves a row
// with a later time (or one that is not there) alone.
const touchKeySQL = `UPDATE api_keys SET last_used_time = $2
WHERE id = $1 AND (last_used_time IS NULL OR last_used_time < $2)`

// TouchKey records that key id was used at t, unless a later use is
// recorded. Like RecordWeChatCall, it returns once the write is queued:
// the writer of async.go sends it with the next batch, and a failed write
// is dropped (it costs a stale last-used time). An unknown id, and the
// zero time, change nothing. A time outside the storable years is refused
// here. It must not be called from inside InTx.
func (db *DB) TouchKey(ctx context.Context, id string, t time.Time) error {
	at, err := timeArg(t).Int64Value()
	if err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	if !at.Valid || id == "" {
		return nil
	}
	if err := db.async.post(ctx, asyncWrite{keyID: id, at: at.Int64}); err != nil {
		return fmt.Errorf("touch key %s: %w", id, err)
	}
	return nil
}

// encodeKeyList returns the JSON array column of a list; nil is [], as
// internal/db writes it.
func encodeKeyList[T ~string](list []T) (string, error) {
	if list == nil {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// decodeKeyList reads a JSON array column; [] is nil, as internal/db
// reads it.
func decodeKeyList[T ~string](s string) ([]T, error) {
	var v []T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	if len(v) == 0 {
		v = nil
	}
	return v, nil
}
