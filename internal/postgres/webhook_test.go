package postgres

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// webhookBase is the create time of the endpoints of the webhook tests.
var webhookBase = time.Date(2026, 12, 1, 8, 0, 0, 5, time.UTC)

// webhookEvent is event n of the webhook tests: id evt_<n>, sequence n.
func webhookEvent(n uint64) service.Event {
	return service.Event{ID: "evt_" + string(rune('0'+n)), Sequence: n, Type: service.EventChargeSucceeded, SubMchID: "A"}
}

// TestWebhookEndpointAgreesWithSQLite: the same endpoints written to both
// stores are stored alike, byte for byte: the secret in the clear, the
// lists as the same JSON text ([] for none).
func TestWebhookEndpointAgreesWithSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	path := filepath.Join(t.TempDir(), "papayd.db")
	lite, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	eps := []service.StoredWebhookEndpoint{{
		WebhookEndpoint: service.WebhookEndpoint{ID: "we_1", URL: "https://x.example/h?a=1&b=<2>",
			EventTypes: []service.EventType{service.EventChargeSucceeded, service.EventRefundSucceeded},
			SubMchIDs:  []string{"A", "商户\"2\""}, State: service.WebhookEndpointEnabled,
			CreateTime: webhookBase, UpdateTime: webhookBase},
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/+zO+DzK5d8=",
	}, {
		WebhookEndpoint: service.WebhookEndpoint{ID: "we_2", URL: "http://y.example",
			State: service.WebhookEndpointDeleted, CreateTime: webhookBase, UpdateTime: webhookBase},
		Secret: "whsec_eA==",
	}}
	inTx(t, pg, func(tx Tx) error {
		for _, e := range eps {
			if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err := lite.InTx(ctx, func(tx service.Tx) error {
		for _, e := range eps {
			if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := lite.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const stored = `SELECT event_types, sub_mchids, secret FROM webhook_endpoints WHERE id = `
	for _, e := range eps {
		var want, got [3]string
		if err := raw.QueryRowContext(ctx, stored+`?`, e.ID).Scan(&want[0], &want[1], &want[2]); err != nil {
			t.Fatal(err)
		}
		if err := pg.pool.QueryRow(ctx, stored+`$1`, e.ID).Scan(&got[0], &got[1], &got[2]); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("endpoint %s stored as\n postgres %q\n sqlite   %q", e.ID, got, want)
		}
		if got[2] != e.Secret {
			t.Errorf("endpoint %s: secret stored as %q, want it as given", e.ID, got[2])
		}
	}
	got, err := pg.WebhookEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(eps, got); diff != "" {
		t.Errorf("read back (-written +got):\n%s", diff)
	}
}

// TestWebhookQueryPlans: the webhook engine's head of line (an endpoint's
// PENDING deliveries in event order, LIMIT its batch) is read from
// webhook_deliveries_endpoint in index order, with no sort; an event's
// deliveries (Redeliver) from webhook_deliveries_event. The head of line
// is checked in its custom and its generic plan. As in TestQueryPlans,
// sequential scans are off for the check.
func TestWebhookQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	list := func(f service.WebhookDeliveryFilter) (string, []any) {
		query, args := listWebhookDeliveriesQuery(f)
		return query, []any{args}
	}
	tests := []struct {
		name, index string
		query       string
		args        []any
		sortFree    bool
	}{
		{name: "engine head of line", index: "webhook_deliveries_endpoint", sortFree: true},
		{name: "an endpoint's FAILED deliveries", index: "webhook_deliveries_endpoint", sortFree: true},
		{name: "an endpoint's deliveries", index: "webhook_deliveries_endpoint"},
		{name: "an event's deliveries", index: "webhook_deliveries_event"},
		{name: "update delivery", index: "webhook_deliveries_pkey", query: updateWebhookDeliverySQL, args: []any{pgx.NamedArgs{
			"state": "PENDING", "attempts": 1, "next_attempt_time": int64(1), "last_attempt_time": int64(1),
			"last_status": 500, "last_error": "", "update_time": int64(1), "id": int64(1)}}},
		{name: "endpoint", index: "webhook_endpoints_pkey", query: webhookEndpointSQL, args: []any{"we_1"}},
	}
	// The filters as their callers pass them: the engine's sendBatch, the
	// ListWebhookDeliveries RPC (with and without a state), Redeliver.
	tests[0].query, tests[0].args = list(service.WebhookDeliveryFilter{EndpointID: "we_1",
		State: service.WebhookDeliveryPending, PageSize: 100})
	tests[1].query, tests[1].args = list(service.WebhookDeliveryFilter{EndpointID: "we_1",
		State: service.WebhookDeliveryFailed, AfterSequence: 7, PageSize: 51})
	tests[2].query, tests[2].args = list(service.WebhookDeliveryFilter{EndpointID: "we_1", PageSize: 51})
	tests[3].query, tests[3].args = list(service.WebhookDeliveryFilter{EventID: "evt_1"})
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
		if tt.sortFree && strings.Contains(plan, "Sort") {
			t.Errorf("%s: plan sorts:\n%s", tt.name, plan)
		}
	}

	// pgx prepares each statement once per connection, and after a few
	// runs PostgreSQL may plan it once for every value (a generic plan):
	// the head of line must not need a sort in that plan either.
	query, args := listWebhookDeliveriesQuery(service.WebhookDeliveryFilter{EndpointID: "we_1",
		State: service.WebhookDeliveryPending, PageSize: 100})
	sql, params, err := args.RewriteQuery(ctx, conn.Conn(), query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ptx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	if _, err := ptx.Exec(ctx, `PREPARE head AS `+sql); err != nil {
		t.Fatal(err)
	}
	// EXECUTE takes no bound parameters: its arguments are literals.
	literals := make([]string, len(params))
	for i, p := range params {
		switch v := p.(type) {
		case string:
			literals[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case int64:
			literals[i] = fmt.Sprint(v)
		default:
			t.Fatalf("argument %d: %T", i+1, p)
		}
	}
	plan := explain(t, ptx, `EXECUTE head(`+strings.Join(literals, ", ")+`)`)
	if !strings.Contains(plan, " webhook_deliveries_endpoint ") || strings.Contains(plan, "Sort") ||
		!strings.Contains(plan, "$") {
		t.Errorf("generic plan of the head of line: not a sort-free scan of webhook_deliveries_endpoint:\n%s", plan)
	}
}

// TestWebhookOrderIsByteOrder: ties of create_time (endpoints) and of
// event sequence (deliveries of one event) go in byte order of the
// endpoint id, as SQLite orders them, even when the columns collate
// otherwise (here ICU English, where "we_a" sorts before "we_B").
func TestWebhookOrderIsByteOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	var natural bool
	if err := db.pool.QueryRow(ctx, `SELECT 'we_a' < 'we_B' COLLATE "en-x-icu"`).Scan(&natural); err != nil {
		t.Fatal(err)
	}
	if !natural {
		t.Fatal(`"en-x-icu" orders "we_B" before "we_a": the test would prove nothing`)
	}
	// The foreign key goes first: it ties the two columns' collations.
	if _, err := db.pool.Exec(ctx, `ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey;
ALTER TABLE webhook_endpoints ALTER COLUMN id TYPE text COLLATE "en-x-icu";
ALTER TABLE webhook_deliveries ALTER COLUMN endpoint_id TYPE text COLLATE "en-x-icu"`); err != nil {
		t.Fatal(err)
	}
	ids := []string{"we_a", "we_B"}
	inTx(t, db, func(tx Tx) error {
		for _, id := range ids {
			if err := tx.CreateWebhookEndpoint(ctx, service.StoredWebhookEndpoint{WebhookEndpoint: service.WebhookEndpoint{
				ID: id, URL: "https://x.example", State: service.WebhookEndpointEnabled,
				CreateTime: webhookBase, UpdateTime: webhookBase}, Secret: "whsec_eA=="}); err != nil {
				return err
			}
			if _, err := tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery(id, webhookEvent(1), webhookBase)); err != nil {
				return err
			}
		}
		return nil
	})
	want := []string{"we_B", "we_a"}
	es, err := db.WebhookEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	ds, err := db.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EventID: "evt_1"})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, d := range ds {
		got = append(got, d.EndpointID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries of an event (-want +got):\n%s", diff)
	}
}
