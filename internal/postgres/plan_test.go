package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestQueryPlans pins that the lookups, a charge's refunds, the refund
// pages, the due scans and the claims and releases of leases can be served by the indexes meant for them: a
// partial index applies only when the query's WHERE implies its
// predicate. Sequential scans are disabled for the check, since on the
// empty tables of a test the planner would rightly prefer them.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	page := pgx.NamedArgs{"after_time": int64(1 << 62), "after_id": int64(1 << 62), "limit": 10}
	due := pgx.NamedArgs{"now": int64(1 << 62), "limit": 10}
	claim := pgx.NamedArgs{"now": int64(1 << 62), "until": int64(1<<62 + 1), "owner": "a", "limit": 10}
	with := func(args pgx.NamedArgs, name string, v any) pgx.NamedArgs {
		out := pgx.NamedArgs{name: v}
		for k, v := range args {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name, query, index string
		args               []any
	}{
		{"refund by out_refund_no", refundByOutRefundNoSQL, "refunds_out_refund_no_key", []any{"R1"}},
		{"refund by refund id", refundByRefundIDSQL, "refunds_refund_id", []any{"W1"}},
		{"update refund", updateRefundSQL, "refunds_out_refund_no_key", []any{updateRefundArgs(fullRefund("R1", "W1", time.Now()))}},
		{"refunds of a charge", refundsOfChargeSQL, "refunds_out_trade_no", []any{"T1"}},
		{"refund page", listRefundsSQL + listOrderSQL, "refunds_page", []any{page}},
		{"refund page by out_trade_no", listRefundsSQL + listRefundsByOutTradeNoSQL + listOrderSQL, "refunds_out_trade_no",
			[]any{with(page, "out_trade_no", "T1")}},
		{"refund page by state", listRefundsSQL + listRefundsByStateSQL + listOrderSQL, "refunds_state",
			[]any{with(page, "state", "PENDING")}},
		{"refund page by sub_mchid", listRefundsSQL + listRefundsBySubMchIDSQL + listOrderSQL, "refunds_sub_mchid",
			[]any{with(page, "sub_mchid", "m1")}},
		{"due charges", dueChargesSQL, "charges_due", []any{due}},
		{"due agreements", dueAgreementsSQL, "agreements_due", []any{due}},
		{"due refunds", dueRefundsSQL, "refunds_due", []any{due}},
		{"claim charges", claimChargesSQL, "charges_due", []any{claim}},
		{"claim agreements", claimAgreementsSQL, "agreements_due", []any{claim}},
		{"claim refunds", claimRefundsSQL, "refunds_due", []any{claim}},
		{"claim intents", claimIntentsSQL, "intents_pkey", []any{claim}},
		{"release charges", releaseClaimsSQL, "charges_leased", []any{"a"}},
		{"release agreements", releaseClaimsSQL, "agreements_leased", []any{"a"}},
		{"release refunds", releaseClaimsSQL, "refunds_leased", []any{"a"}},
		{"release intents", releaseClaimsSQL, "intents_leased", []any{"a"}},
		{"claim lease", claimLeaseSQL, "leases_pkey", []any{pgx.NamedArgs{"name": "n", "owner": "a", "now": int64(1), "until": int64(2)}}},
		{"release lease", releaseLeaseSQL, "leases_pkey", []any{"n", "a"}},
		{"notification recorded", notificationRecordedSQL, "notifications_pkey", []any{"SP", "SUB", "N1"}},
		{"delete intent", deleteIntentSQL, "intents_pkey", []any{int64(1)}},
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	ptx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ptx.Rollback(ctx) }()
	if _, err := ptx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		plan := explain(t, ptx, tt.query, tt.args...)
		if !strings.Contains(plan, " "+tt.index+" ") && !strings.Contains(plan, " "+tt.index+"\n") {
			t.Errorf("%s: plan does not use %s:\n%s", tt.name, tt.index, plan)
		}
	}
}

// explain returns the plan of query with args, one line per node.
func explain(t *testing.T, q pgx.Tx, query string, args ...any) string {
	t.Helper()
	rows, err := q.Query(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestNotificationIndexes pins that notifications has its primary key
// alone: the exactly-once check reads it, and no query reads notifications
// by another column, so another index would only cost each insert.
func TestNotificationIndexes(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	rows, err := db.pool.Query(t.Context(), `SELECT indexname FROM pg_indexes WHERE tablename = 'notifications' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "notifications_pkey" {
		t.Errorf("indexes of notifications: %v, want [notifications_pkey]", names)
	}
}
