package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

const recordWeChatCallSQL = `INSERT INTO wechat_calls
	(time, method, path, http_status, code, request_id, duration_ns, error)
VALUES (@time, @method, @path, @http_status, @code, @request_id, @duration_ns, @error)`

// RecordWeChatCall appends an audit row for one call to WeChat Pay. It
// returns once the row is queued for the writer of async.go, not
// committed, so the call path waits for no commit of it. A crash can lose
// the rows of the last few milliseconds; the records of money (charges,
// agreements, intents) are committed before and after every call and never
// depend on this row. A row that could not be written is reported to
// failed (which must not block). A time outside the storable years is
// refused here. It must not be called from inside InTx.
func (db *DB) RecordWeChatCall(ctx context.Context, c service.WeChatCall, failed func(error)) error {
	if _, err := timeArg(c.Time).Int64Value(); err != nil {
		return fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err)
	}
	args := pgx.NamedArgs{"time": timeArg(c.Time), "method": c.Method, "path": c.Path,
		"http_status": c.HTTPStatus, "code": c.Code, "request_id": c.RequestID,
		"duration_ns": int64(c.Duration), "error": c.Error}
	err := db.async.post(ctx, asyncWrite{sql: recordWeChatCallSQL, args: []any{args}, failed: func(err error) {
		if failed != nil {
			failed(fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err))
		}
	}})
	if err != nil {
		return fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err)
	}
	return nil
}
