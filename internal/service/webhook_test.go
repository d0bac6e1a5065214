package service

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCreateWebhookEndpointValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		in    WebhookEndpointInput
		field string
	}{
		{"no url", WebhookEndpointInput{}, "url"},
		{"relative", WebhookEndpointInput{URL: "/hook"}, "url"},
		{"ftp", WebhookEndpointInput{URL: "ftp://x.example/hook"}, "url"},
		{"unknown type", WebhookEndpointInput{URL: "https://x.example/h", EventTypes: []EventType{"charge.nope"}}, "event_types[0]"},
		{"bad sub_mchid", WebhookEndpointInput{URL: "https://x.example/h", SubMchID: "a b"}, "sub_mchid"},
	} {
		_, _, err := newFixture().svc.CreateWebhookEndpoint(context.Background(), tc.in)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalid || len(e.Violations) == 0 || e.Violations[0].Field != tc.field {
			t.Errorf("%s: %v, want INVALID_ARGUMENT on %s", tc.name, err, tc.field)
		}
	}
}

func TestWebhookEndpointLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := WithCaller(context.Background(), Caller{KeyID: "k0", Name: "admin"})
	ep, secret, err := f.svc.CreateWebhookEndpoint(ctx, WebhookEndpointInput{URL: "https://x.example/h",
		EventTypes: []EventType{EventChargeSucceeded}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := WebhookSecretKey(secret)
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) != 32 {
		t.Errorf("secret %q: %d bytes, %v", secret, len(key), err)
	}
	want := WebhookEndpoint{ID: ep.ID, URL: "https://x.example/h", EventTypes: []EventType{EventChargeSucceeded},
		State: WebhookEndpointEnabled, CreateTime: t0, UpdateTime: t0}
	if diff := cmp.Diff(want, ep); diff != "" {
		t.Errorf("endpoint (-want +got):\n%s", diff)
	}
	stored, _ := f.store.WebhookEndpoint(ctx, ep.ID)
	if stored.Secret != secret {
		t.Errorf("stored secret %q", stored.Secret)
	}
	if got, err := f.svc.GetWebhookEndpoint(ctx, ep.ID); err != nil || got.ID != ep.ID {
		t.Errorf("Get: %+v %v", got, err)
	}
	if err := f.svc.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetWebhookEndpoint(ctx, ep.ID); !errors.Is(err, ErrWebhookEndpointNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	if l, _ := f.svc.ListWebhookEndpoints(ctx); len(l) != 0 {
		t.Errorf("List after delete: %+v", l)
	}
	var audit []string
	for _, e := range f.store.view().audit {
		audit = append(audit, e.Method+" "+e.Resource+" "+e.KeyID)
	}
	if diff := cmp.Diff([]string{"CreateWebhookEndpoint webhook-endpoints/" + ep.ID + " k0",
		"DeleteWebhookEndpoint webhook-endpoints/" + ep.ID + " k0"}, audit); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestWebhookEndpointsOfLimitedCallers(t *testing.T) {
	t.Parallel()
	f := newFixture()
	a := WithCaller(context.Background(), Caller{KeyID: "ka", SubMchIDs: []string{"A", "A2"}})
	b := WithCaller(context.Background(), Caller{KeyID: "kb", SubMchIDs: []string{"B"}})
	if _, _, err := f.svc.CreateWebhookEndpoint(a, WebhookEndpointInput{URL: "https://a.example", SubMchID: "B"}); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("another's sub-merchant: %v", err)
	}
	own, _, err := f.svc.CreateWebhookEndpoint(a, WebhookEndpointInput{URL: "https://a.example"})
	if err != nil || !cmp.Equal(own.SubMchIDs, []string{"A", "A2"}) {
		t.Fatalf("own set: %+v %v", own, err)
	}
	one, _, err := f.svc.CreateWebhookEndpoint(a, WebhookEndpointInput{URL: "https://a.example", SubMchID: "A2"})
	if err != nil || !cmp.Equal(one.SubMchIDs, []string{"A2"}) {
		t.Fatalf("one: %+v %v", one, err)
	}
	everyone, _, err := f.svc.CreateWebhookEndpoint(context.Background(), WebhookEndpointInput{URL: "https://all.example"})
	if err != nil || everyone.SubMchIDs != nil {
		t.Fatalf("unlimited: %+v %v", everyone, err)
	}
	for _, id := range []string{own.ID, one.ID, everyone.ID} {
		if _, err := f.svc.GetWebhookEndpoint(b, id); !errors.Is(err, ErrWebhookEndpointNotFound) {
			t.Errorf("b gets %s: %v", id, err)
		}
		if err := f.svc.DeleteWebhookEndpoint(b, id); !errors.Is(err, ErrWebhookEndpointNotFound) {
			t.Errorf("b deletes %s: %v", id, err)
		}
	}
	if _, err := f.svc.GetWebhookEndpoint(a, everyone.ID); !errors.Is(err, ErrWebhookEndpointNotFound) {
		t.Errorf("a gets the endpoint of every sub-merchant: %v", err)
	}
	l, _ := f.svc.ListWebhookEndpoints(a)
	if len(l) != 2 || l[0].ID != own.ID || l[1].ID != one.ID {
		t.Errorf("a lists %+v", l)
	}
	if l, _ := f.svc.ListWebhookEndpoints(context.Background()); len(l) != 3 {
		t.Errorf("unlimited lists %d", len(l))
	}
	if _, err := f.svc.ListWebhookDeliveries(b, WebhookDeliveryFilter{EndpointID: own.ID}); !errors.Is(err, ErrWebhookEndpointNotFound) {
		t.Errorf("b lists a's deliveries: %v", err)
	}
}

func TestDeliveryAttempted(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{0, 5 * time.Second, time.Minute}
	d := WebhookDelivery{State: WebhookDeliveryPending, NextAttemptTime: t0}
	for _, tc := range []struct {
		name     string
		attempts int
		a        WebhookAttempt
		state    WebhookDeliveryState
		next     time.Time
		gone     bool
	}{
		{"2xx", 0, WebhookAttempt{Time: t0, Status: 204}, WebhookDeliveryDelivered, time.Time{}, false},
		{"500", 0, WebhookAttempt{Time: t0, Status: 500, Err: "HTTP 500"}, WebhookDeliveryPending, t0.Add(5 * time.Second), false},
		{"no answer", 1, WebhookAttempt{Time: t0, Err: "timeout"}, WebhookDeliveryPending, t0.Add(time.Minute), false},
		{"last", 2, WebhookAttempt{Time: t0, Status: 500}, WebhookDeliveryFailed, time.Time{}, false},
		{"410", 0, WebhookAttempt{Time: t0, Status: 410}, WebhookDeliveryFailed, time.Time{}, true},
		{"429 longer", 0, WebhookAttempt{Time: t0, Status: 429, RetryAfter: time.Hour}, WebhookDeliveryPending, t0.Add(time.Hour), false},
		{"503 shorter", 1, WebhookAttempt{Time: t0, Status: 503, RetryAfter: time.Second}, WebhookDeliveryPending, t0.Add(time.Minute), false},
		{"429 capped", 0, WebhookAttempt{Time: t0, Status: 429, RetryAfter: 100 * time.Hour}, WebhookDeliveryPending, t0.Add(MaxWebhookRetryAfter), false},
		{"500 ignores Retry-After", 0, WebhookAttempt{Time: t0, Status: 500, RetryAfter: time.Hour}, WebhookDeliveryPending, t0.Add(5 * time.Second), false},
		{"302", 0, WebhookAttempt{Time: t0, Status: 302}, WebhookDeliveryPending, t0.Add(5 * time.Second), false},
	} {
		d.Attempts = tc.attempts
		got, gone := d.Attempted(tc.a, schedule)
		if got.State != tc.state || !got.NextAttemptTime.Equal(tc.next) || gone != tc.gone || got.Attempts != tc.attempts+1 ||
			got.LastStatus != tc.a.Status || !got.LastAttemptTime.Equal(t0) {
			t.Errorf("%s: %+v gone=%v", tc.name, got, gone)
		}
	}
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	f := newFixture()
	a := WithCaller(context.Background(), Caller{KeyID: "ka", SubMchIDs: []string{"A"}})
	epA, _, _ := f.svc.CreateWebhookEndpoint(a, WebhookEndpointInput{URL: "https://a.example"})
	epAll, _, _ := f.svc.CreateWebhookEndpoint(context.Background(), WebhookEndpointInput{URL: "https://all.example"})
	ev := Event{ID: "evt_1", Sequence: 1, Type: EventChargeSucceeded, SubMchID: "A", CreateTime: t0}
	err := f.store.InTx(context.Background(), func(tx Tx) error {
		for _, ep := range []string{epA.ID, epAll.ID} {
			d := NewWebhookDelivery(ep, ev, t0)
			d.State, d.NextAttemptTime, d.Attempts = WebhookDeliveryFailed, time.Time{}, 10
			if _, err := tx.CreateWebhookDelivery(context.Background(), d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Redeliver(a, "evt_2"); !errors.Is(err, ErrWebhookDeliveryNotFound) {
		t.Errorf("unknown event: %v", err)
	}
	f.clock.advance(time.Hour)
	ds, err := f.svc.Redeliver(a, "evt_1")
	if err != nil || len(ds) != 1 || ds[0].EndpointID != epA.ID || ds[0].State != WebhookDeliveryPending ||
		ds[0].Attempts != 0 || !ds[0].NextAttemptTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Redeliver by a: %+v %v", ds, err)
	}
	failed, err := f.svc.ListWebhookDeliveries(context.Background(), WebhookDeliveryFilter{EndpointID: epAll.ID, State: WebhookDeliveryFailed})
	if err != nil || len(failed) != 1 {
		t.Errorf("the other endpoint's delivery: %+v %v", failed, err)
	}
	if got := f.store.view().audit; got[len(got)-1].Method != "Redeliver" || got[len(got)-1].Resource != "events/evt_1" {
		t.Errorf("audit %+v", got[len(got)-1])
	}
}
