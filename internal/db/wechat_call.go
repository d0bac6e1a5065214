package db

import (
	"context"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

const recordWeChatCallSQL = `INSERT INTO wechat_calls
	(time, method, path, http_status, code, request_id, duration_ns, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// RecordWeChatCall appends an audit row for one call to WeChat Pay, in its
// own write transaction (batched with others), so it must not be called
// from inside InTx.
func (db *DB) RecordWeChatCall(ctx context.Context, c service.WeChatCall) error {
	err := db.writer.do(ctx, func(t *tx) error {
		_, err := t.q.ExecContext(ctx, recordWeChatCallSQL,
			timeArg(c.Time), c.Method, c.Path, c.HTTPStatus, c.Code, c.RequestID, int64(c.Duration), c.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err)
	}
	return nil
}
