package db

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
		Method: "GET", Path: "/v3/global/papay/contracts/C1", Error: "dial tcp: timeout",
		Duration: time.Second, Time: time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC),
	}}
	failed := make(chan error, len(calls))
	for _, c := range calls {
		if err := db.RecordWeChatCall(ctx, c, func(err error) { failed <- err }); err != nil {
			t.Fatalf("RecordWeChatCall: %v", err)
		}
	}
	// The rows are queued, not committed; a transaction queued after them
	// returns after the commit that wrote them.
	if err := db.InTx(ctx, func(service.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Fatalf("RecordWeChatCall failed: %v", err)
	default:
	}

	rows, err := db.read.QueryContext(ctx, `SELECT time, method, path, http_status, code, request_id,
		duration_ns, error FROM wechat_calls ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []service.WeChatCall
	for rows.Next() {
		var c service.WeChatCall
		if err := rows.Scan(timeDest{&c.Time}, &c.Method, &c.Path, &c.HTTPStatus, &c.Code, &c.RequestID,
			&c.Duration, &c.Error); err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(calls, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
