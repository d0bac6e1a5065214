package db

import (
	"context"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

const recordWeChatCallSQL = `INSERT INTO wechat_calls
	(time, method, path, http_status, code, request_id, duration_ns, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// RecordWeChatCall appends an audit row for one call to WeChat Pay. It
// returns once the row is queued for the writer, not committed: the row
// joins the next group commit, which is usually the one that records the
// call's outcome on the charge or agreement, so the call path waits for one
// commit instead of two. A crash can lose the rows of the last few
// milliseconds; the records of money (charges, agreements, intents) are
// committed before and after every call and never depend on this row.
// A row that could not be written is reported to failed (which must not
// block). It must not be called from inside InTx: with the queue full it
// would wait for the writer, which is running its caller.
func (db *DB) RecordWeChatCall(ctx context.Context, c service.WeChatCall, failed func(error)) error {
	err := db.writer.post(ctx, func(t *tx) error {
		_, err := t.q.ExecContext(context.Background(), recordWeChatCallSQL,
			timeArg(c.Time), c.Method, c.Path, c.HTTPStatus, c.Code, c.RequestID, int64(c.Duration), c.Error)
		return err
	}, func(err error) {
		if err != nil && failed != nil {
			failed(fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err))
		}
	})
	if err != nil {
		return fmt.Errorf("record wechat call %s %s: %w", c.Method, c.Path, err)
	}
	return nil
}
