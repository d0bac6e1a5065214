package postgres

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

func TestRecordWeChatCall(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	calls := []service.WeChatCall{{
		Method: "POST", Path: "/v3/global/papay/contracts/presign", HTTPStatus: 200,
		RequestID: "08F8A1B2", Duration: 123456789 * time.Nanosecond,
		Time: time.Date(2026, 3, 1, 10, 0, 0, 42, time.UTC),
	}, {
		Method: "GET", Path: "/v3/global/papay/contracts/C1", Error: "dial tcp: timeout", Code: "SYSTEM_ERROR",
		Duration: time.Second, Time: time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC),
	}}
	failed := make(chan error, len(calls))
	for _, c := range calls {
		if err := db.RecordWeChatCall(ctx, c, func(err error) { failed <- err }); err != nil {
			t.Fatalf("RecordWeChatCall: %v", err)
		}
	}
	// The rows are queued, not committed; a flush returns after them.
	flushAsync(t, db)
	select {
	case err := <-failed:
		t.Fatalf("RecordWeChatCall failed: %v", err)
	default:
	}

	rows, err := db.pool.Query(ctx, `SELECT time, method, path, http_status, code, request_id,
		duration_ns, error FROM wechat_calls ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (service.WeChatCall, error) {
		var c service.WeChatCall
		var d int64
		err := row.Scan(timeDest{&c.Time}, &c.Method, &c.Path, &c.HTTPStatus, &c.Code, &c.RequestID, &d, &c.Error)
		c.Duration = time.Duration(d)
		return c, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(calls, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
