package db

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

func TestWebhookEndpointsAndDeliveries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	base := time.Date(2026, 12, 1, 8, 0, 0, 5, time.UTC)
	ep := service.StoredWebhookEndpoint{
		WebhookEndpoint: service.WebhookEndpoint{ID: "we_1", URL: "https://x.example/h",
			EventTypes: []service.EventType{service.EventChargeSucceeded}, SubMchIDs: []string{"A"},
			State: service.WebhookEndpointEnabled, CreateTime: base, UpdateTime: base},
		Secret: "whsec_c2VjcmV0",
	}
	other := service.StoredWebhookEndpoint{WebhookEndpoint: service.WebhookEndpoint{ID: "we_2", URL: "http://y.example",
		State: service.WebhookEndpointEnabled, CreateTime: base.Add(time.Second), UpdateTime: base}, Secret: "whsec_eA=="}
	ev := func(n uint64) service.Event {
		return service.Event{ID: "evt_" + string(rune('0'+n)), Sequence: n, Type: service.EventChargeSucceeded, SubMchID: "A"}
	}
	var ids []int64
	inTx(t, db, func(tx service.Tx) error {
		for _, e := range []service.StoredWebhookEndpoint{ep, other} {
			if err := tx.CreateWebhookEndpoint(ctx, e); err != nil {
				return err
			}
		}
		for _, d := range []service.WebhookDelivery{service.NewWebhookDelivery("we_1", ev(2), base),
			service.NewWebhookDelivery("we_1", ev(1), base), service.NewWebhookDelivery("we_2", ev(1), base)} {
			id, err := tx.CreateWebhookDelivery(ctx, d)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	err := db.InTx(ctx, func(tx service.Tx) error {
		_, err := tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery("we_1", ev(1), base))
		return err
	})
	if !errors.Is(err, service.ErrConflict) {
		t.Errorf("a second delivery of an event: %v", err)
	}
	if err := db.InTx(ctx, func(tx service.Tx) error { return tx.CreateWebhookEndpoint(ctx, ep) }); !errors.Is(err, service.ErrConflict) {
		t.Errorf("a second endpoint of an id: %v", err)
	}

	got, err := db.WebhookEndpoint(ctx, "we_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ep, got); diff != "" {
		t.Errorf("endpoint (-want +got):\n%s", diff)
	}
	if _, err := db.WebhookEndpoint(ctx, "we_9"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("unknown endpoint: %v", err)
	}

	ep.State, ep.DisableReason, ep.Cursor, ep.UpdateTime = service.WebhookEndpointDisabled, "HTTP 410 Gone", 7, base.Add(time.Hour)
	ep.URL = "https://changed.example" // fixed at creation: not written
	d := service.NewWebhookDelivery("we_1", ev(1), base)
	d.ID = ids[1]
	d, _ = d.Attempted(service.WebhookAttempt{Time: base.Add(time.Minute), Status: 500, Err: "HTTP 500"}, []time.Duration{0, time.Minute})
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.UpdateWebhookEndpoint(ctx, ep.WebhookEndpoint); err != nil {
			return err
		}
		return tx.UpdateWebhookDelivery(ctx, d)
	})
	if err := db.InTx(ctx, func(tx service.Tx) error {
		return tx.UpdateWebhookEndpoint(ctx, service.WebhookEndpoint{ID: "we_9"})
	}); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("update of an unknown endpoint: %v", err)
	}
	all, err := db.WebhookEndpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ep.URL = "https://x.example/h"
	if diff := cmp.Diff([]service.StoredWebhookEndpoint{ep, other}, all); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}

	list := func(f service.WebhookDeliveryFilter) []string {
		t.Helper()
		ds, err := db.ListWebhookDeliveries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.EndpointID+"/"+d.EventID+"/"+string(d.State))
		}
		return out
	}
	for _, tc := range []struct {
		f    service.WebhookDeliveryFilter
		want []string
	}{
		{service.WebhookDeliveryFilter{}, []string{"we_1/evt_1/PENDING", "we_2/evt_1/PENDING", "we_1/evt_2/PENDING"}},
		{service.WebhookDeliveryFilter{EndpointID: "we_1", PageSize: 1}, []string{"we_1/evt_1/PENDING"}},
		{service.WebhookDeliveryFilter{EventID: "evt_1"}, []string{"we_1/evt_1/PENDING", "we_2/evt_1/PENDING"}},
		{service.WebhookDeliveryFilter{EndpointID: "we_1", AfterSequence: 1}, []string{"we_1/evt_2/PENDING"}},
		{service.WebhookDeliveryFilter{State: service.WebhookDeliveryFailed}, nil},
	} {
		if diff := cmp.Diff(tc.want, list(tc.f)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.f, diff)
		}
	}
	ds, err := db.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EndpointID: "we_1", EventID: "evt_1"})
	if err != nil || len(ds) != 1 {
		t.Fatalf("%+v %v", ds, err)
	}
	if diff := cmp.Diff(d, ds[0]); diff != "" {
		t.Errorf("updated delivery (-want +got):\n%s", diff)
	}
}
