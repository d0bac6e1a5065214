package storetest

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// webhookEndpoint is an enabled endpoint id created at created.
func webhookEndpoint(id string, created time.Time) service.StoredWebhookEndpoint {
	return service.StoredWebhookEndpoint{
		WebhookEndpoint: service.WebhookEndpoint{ID: id, URL: "https://x.example/hooks/" + id,
			EventTypes: []service.EventType{service.EventChargeSucceeded, service.EventRefundSucceeded}, SubMchIDs: []string{"m1", "m2"},
			State: service.WebhookEndpointEnabled, CreateTime: created, UpdateTime: created.Add(1)},
		Secret: "whsec_c2VjcmV0LSIgKyBpZA==",
	}
}

func testWebhookEndpoints(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	// Created out of id order: WebhookEndpoints lists in creation order.
	b := webhookEndpoint("we_b", base.In(shanghai))
	a := service.StoredWebhookEndpoint{WebhookEndpoint: service.WebhookEndpoint{ID: "we_a", URL: "http://y.example",
		State: service.WebhookEndpointEnabled, CreateTime: base.Add(time.Second), UpdateTime: base.Add(time.Second)}, Secret: "whsec_eA=="}
	inTx(t, s, func(tx service.Tx) error { return tx.CreateWebhookEndpoint(ctx, b) })
	inTx(t, s, func(tx service.Tx) error { return tx.CreateWebhookEndpoint(ctx, a) })
	_, err := tx1(s, t, func(tx service.Tx) (int, error) {
		return 0, tx.CreateWebhookEndpoint(ctx, webhookEndpoint("we_b", base))
	})
	checkErr(t, "CreateWebhookEndpoint of a recorded id", err, service.ErrConflict)
	check := func(step string, want ...service.StoredWebhookEndpoint) {
		t.Helper()
		got, err := s.WebhookEndpoints(ctx)
		if err != nil {
			t.Fatalf("WebhookEndpoints: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: WebhookEndpoints (-want +got):\n%s", step, diff)
		}
		for _, w := range want {
			for _, r := range []service.WebhookReader{s} {
				e, err := r.WebhookEndpoint(ctx, w.ID)
				if err != nil {
					t.Fatalf("%s: WebhookEndpoint(%s): %v", step, w.ID, err)
				}
				if diff := cmp.Diff(w, e); diff != "" {
					t.Errorf("%s: WebhookEndpoint(%s) (-want +got):\n%s", step, w.ID, diff)
				}
				checkUTC(t, step, map[string]time.Time{"CreateTime": e.CreateTime, "UpdateTime": e.UpdateTime})
			}
		}
	}
	check("created", b, a)
	_, err = s.WebhookEndpoint(ctx, "we_9")
	checkErr(t, "WebhookEndpoint of an unknown id", err, service.ErrNotFound)

	// State, disable reason, cursor and update time are written; the rest
	// is fixed at creation.
	u := b.WebhookEndpoint
	u.State, u.DisableReason, u.Cursor, u.UpdateTime = service.WebhookEndpointDisabled, "HTTP 410 Gone", 1<<40+7, base.Add(time.Hour)
	u.URL, u.EventTypes, u.SubMchIDs, u.CreateTime = "https://changed.example", nil, []string{"m9"}, base.Add(time.Hour)
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateWebhookEndpoint(ctx, u) })
	b.State, b.DisableReason, b.Cursor, b.UpdateTime = u.State, u.DisableReason, u.Cursor, u.UpdateTime
	check("updated", b, a)
	d := a.WebhookEndpoint
	d.State, d.UpdateTime = service.WebhookEndpointDeleted, base.Add(2*time.Hour)
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateWebhookEndpoint(ctx, d) })
	a.State, a.UpdateTime = d.State, d.UpdateTime
	check("deleted, still listed", b, a)
	_, err = tx1(s, t, func(tx service.Tx) (int, error) {
		return 0, tx.UpdateWebhookEndpoint(ctx, service.WebhookEndpoint{ID: "we_9", State: service.WebhookEndpointDisabled})
	})
	checkErr(t, "UpdateWebhookEndpoint of an unknown id", err, service.ErrNotFound)
	// Inside a transaction, the endpoints read alike.
	inTx(t, s, func(tx service.Tx) error {
		got, err := tx.WebhookEndpoints(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]service.StoredWebhookEndpoint{b, a}, got); diff != "" {
			t.Errorf("WebhookEndpoints in a tx (-want +got):\n%s", diff)
		}
		e, err := tx.WebhookEndpoint(ctx, "we_b")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(b, e); diff != "" {
			t.Errorf("WebhookEndpoint in a tx (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testWebhookDeliveries(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	at := base.In(shanghai)
	ev := func(n uint64) service.Event {
		return service.Event{ID: "evt_" + string(rune('0'+n)), Sequence: n, Type: service.EventChargeSucceeded, SubMchID: "m1"}
	}
	var ids []int64
	inTx(t, s, func(tx service.Tx) error {
		ids = nil // fn may run again
		for _, id := range []string{"we_2", "we_1"} {
			if err := tx.CreateWebhookEndpoint(ctx, webhookEndpoint(id, base)); err != nil {
				return err
			}
		}
		for _, d := range []service.WebhookDelivery{service.NewWebhookDelivery("we_1", ev(2), at),
			service.NewWebhookDelivery("we_2", ev(1), at), service.NewWebhookDelivery("we_1", ev(1), at)} {
			d.ID = 777 // ignored
			id, err := tx.CreateWebhookDelivery(ctx, d)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if ids[0] == ids[1] || ids[1] == ids[2] || ids[0] == ids[2] {
		t.Errorf("delivery ids %v, want distinct", ids)
	}
	_, err := tx1(s, t, func(tx service.Tx) (int64, error) {
		return tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery("we_1", ev(1), at))
	})
	checkErr(t, "a second delivery of an event to an endpoint", err, service.ErrConflict)

	// The first attempt of we_1's delivery of event 1 failed.
	d := service.NewWebhookDelivery("we_1", ev(1), at)
	d.ID = ids[2]
	d, _ = d.Attempted(service.WebhookAttempt{Time: base.Add(time.Minute), Status: 500, Err: "HTTP 500"}, []time.Duration{0, time.Minute})
	if d.Attempts != 1 || d.LastStatus != 500 || d.LastError == "" {
		t.Fatalf("Attempted: %+v, want one attempt with status 500 and an error", d)
	}
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateWebhookDelivery(ctx, d) })
	missing := d
	missing.ID = 1 << 40
	_, err = tx1(s, t, func(tx service.Tx) (int, error) { return 0, tx.UpdateWebhookDelivery(ctx, missing) })
	checkErr(t, "UpdateWebhookDelivery of an unknown id", err, service.ErrNotFound)
	// Delivered, we_2's delivery of event 1.
	ok := service.NewWebhookDelivery("we_2", ev(1), at)
	ok.ID = ids[1]
	ok, _ = ok.Attempted(service.WebhookAttempt{Time: base.Add(2 * time.Minute), Status: 204}, []time.Duration{0, time.Minute})
	if ok.State != service.WebhookDeliveryDelivered {
		t.Fatalf("Attempted with 204: state %s, want DELIVERED", ok.State)
	}
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateWebhookDelivery(ctx, ok) })

	list := func(r service.WebhookReader, f service.WebhookDeliveryFilter) []string {
		t.Helper()
		ds, err := r.ListWebhookDeliveries(ctx, f)
		if err != nil {
			t.Fatalf("ListWebhookDeliveries(%+v): %v", f, err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.EndpointID+"/"+d.EventID+"/"+string(d.State))
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    service.WebhookDeliveryFilter
		want []string
	}{
		{"all, by sequence then endpoint", service.WebhookDeliveryFilter{}, []string{"we_1/evt_1/PENDING", "we_2/evt_1/DELIVERED", "we_1/evt_2/PENDING"}},
		{"page size", service.WebhookDeliveryFilter{PageSize: 2}, []string{"we_1/evt_1/PENDING", "we_2/evt_1/DELIVERED"}},
		{"endpoint, page size", service.WebhookDeliveryFilter{EndpointID: "we_1", PageSize: 1}, []string{"we_1/evt_1/PENDING"}},
		{"event", service.WebhookDeliveryFilter{EventID: "evt_1"}, []string{"we_1/evt_1/PENDING", "we_2/evt_1/DELIVERED"}},
		{"endpoint, after", service.WebhookDeliveryFilter{EndpointID: "we_1", AfterSequence: 1}, []string{"we_1/evt_2/PENDING"}},
		{"state", service.WebhookDeliveryFilter{State: service.WebhookDeliveryPending}, []string{"we_1/evt_1/PENDING", "we_1/evt_2/PENDING"}},
		{"state of none", service.WebhookDeliveryFilter{State: service.WebhookDeliveryFailed}, nil},
		{"unknown endpoint", service.WebhookDeliveryFilter{EndpointID: "we_9"}, nil},
		{"endpoint and state", service.WebhookDeliveryFilter{EndpointID: "we_1", State: service.WebhookDeliveryPending},
			[]string{"we_1/evt_1/PENDING", "we_1/evt_2/PENDING"}},
	} {
		if diff := cmp.Diff(tt.want, list(s, tt.f)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	inTx(t, s, func(tx service.Tx) error {
		if diff := cmp.Diff([]string{"we_1/evt_1/PENDING", "we_2/evt_1/DELIVERED"}, list(tx, service.WebhookDeliveryFilter{EventID: "evt_1"})); diff != "" {
			t.Errorf("in a tx (-want +got):\n%s", diff)
		}
		return nil
	})
	ds, err := s.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EndpointID: "we_1", EventID: "evt_1"})
	if err != nil || len(ds) != 1 {
		t.Fatalf("ListWebhookDeliveries(we_1, evt_1) = %d, %v; want one", len(ds), err)
	}
	if diff := cmp.Diff(d, ds[0]); diff != "" {
		t.Errorf("updated delivery (-want +got):\n%s", diff)
	}
	checkUTC(t, "delivery", map[string]time.Time{"CreateTime": ds[0].CreateTime, "NextAttemptTime": ds[0].NextAttemptTime,
		"LastAttemptTime": ds[0].LastAttemptTime, "UpdateTime": ds[0].UpdateTime})

	// A transaction reads what it wrote before it commits; rolled back, the
	// write is gone.
	rollback := errors.New("rollback")
	err = s.InTx(ctx, func(tx service.Tx) error {
		final := d
		final.State, final.NextAttemptTime = service.WebhookDeliveryFailed, time.Time{}
		if err := tx.UpdateWebhookDelivery(ctx, final); err != nil {
			return err
		}
		if diff := cmp.Diff([]string{"we_1/evt_1/FAILED"}, list(tx, service.WebhookDeliveryFilter{State: service.WebhookDeliveryFailed})); diff != "" {
			t.Errorf("failed deliveries in the writing tx (-want +got):\n%s", diff)
		}
		return rollback
	})
	checkErr(t, "InTx rolled back", err, rollback)
	if got := list(s, service.WebhookDeliveryFilter{State: service.WebhookDeliveryFailed}); got != nil {
		t.Errorf("failed deliveries after the rollback: %v, want none", got)
	}
}

// testWebhookDeliveryChecks: a PENDING delivery without a next attempt,
// and a delivery to an unknown endpoint, are refused, and are no
// conflicts.
func testWebhookDeliveryChecks(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	inTx(t, s, func(tx service.Tx) error { return tx.CreateWebhookEndpoint(ctx, webhookEndpoint("we_1", base)) })
	ev := service.Event{ID: "evt_1", Sequence: 1, Type: service.EventChargeSucceeded, SubMchID: "m1"}
	noNext := service.NewWebhookDelivery("we_1", ev, base)
	noNext.NextAttemptTime = time.Time{}
	for _, tt := range []struct {
		name string
		d    service.WebhookDelivery
	}{
		{"a PENDING delivery without a next attempt", noNext},
		{"a delivery to an unknown endpoint", service.NewWebhookDelivery("we_9", ev, base)},
	} {
		_, err := tx1(s, t, func(tx service.Tx) (int64, error) { return tx.CreateWebhookDelivery(ctx, tt.d) })
		if err == nil || errors.Is(err, service.ErrConflict) {
			t.Errorf("%s: err = %v, want a refusal other than ErrConflict", tt.name, err)
		}
	}
	ds, err := s.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{})
	if err != nil || len(ds) != 0 {
		t.Errorf("deliveries after the refused ones: %d, %v; want none", len(ds), err)
	}
}

// testCursorBeyondInt64: a cursor above the largest int64 is after every
// event and every delivery (sequences stay below 2^63), not a negative
// number before them all.
func testCursorBeyondInt64(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	appendEvents(t, s, chargeEvent("m1", base))
	evs := listEvents(t, s, service.EventFilter{})
	if len(evs) != 1 {
		t.Fatalf("listed %d events, want the 1 appended", len(evs))
	}
	inTx(t, s, func(tx service.Tx) error {
		if err := tx.CreateWebhookEndpoint(ctx, webhookEndpoint("we_1", base)); err != nil {
			return err
		}
		_, err := tx.CreateWebhookDelivery(ctx, service.NewWebhookDelivery("we_1", evs[0], base))
		return err
	})
	for _, after := range []uint64{1 << 63, math.MaxUint64} {
		if es, err := s.ListEvents(ctx, service.EventFilter{AfterSequence: after, PageSize: 10}); err != nil || len(es) != 0 {
			t.Errorf("ListEvents after %d: %d events, %v; want none", after, len(es), err)
		}
		if ds, err := s.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{AfterSequence: after}); err != nil || len(ds) != 0 {
			t.Errorf("ListWebhookDeliveries after %d: %d deliveries, %v; want none", after, len(ds), err)
		}
	}
}
