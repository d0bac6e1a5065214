package webhook

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// countingStore counts the reads of every endpoint.
type countingStore struct {
	*events
	lists atomic.Int64
}

func (s *countingStore) WebhookEndpoints(ctx context.Context) ([]service.StoredWebhookEndpoint, error) {
	s.lists.Add(1)
	return s.events.WebhookEndpoints(ctx)
}

// cachedEngine runs an engine on f's store whose ticker never fires during
// a test: every round but the first is a wake-up (Notify), served from the
// cache. f.svc is this replica's service, which tells the engine of the
// endpoints it changes.
func cachedEngine(t *testing.T, f *fixture) (*Engine, *countingStore) {
	t.Helper()
	s := &countingStore{events: f.store}
	e := New(Config{RetrySchedule: []time.Duration{0}, Interval: time.Hour, Timeout: 2 * time.Second}, s, encode)
	f.svc = service.New(service.Config{WebhookEndpointsChanged: e.EndpointsChanged}, f.store.DB, nil, clock{}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e, s
}

// notifyUntil wakes e, as a commit that appends events does, until ok.
func notifyUntil(t *testing.T, e *Engine, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not done 10 s after the wake-ups began")
		}
		e.Notify()
	}
}

// addAndWake appends an event and wakes e a few times, as its commit
// would, leaving time for a round to serve it.
func addAndWake(f *fixture, e *Engine) {
	f.store.add("1900000109")
	for range 5 {
		e.Notify()
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWakeUpsServeCachedEndpoints: the rounds commits wake do not read the
// endpoints while none changed, and see at once those the service creates,
// disables (a 410), enables and deletes.
func TestWakeUpsServeCachedEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var mu sync.Mutex
	gone := false
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
		}
	})
	e, s := cachedEngine(t, f)
	for deadline := time.Now().Add(10 * time.Second); s.lists.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first round did not read the endpoints")
		}
	}
	for range 20 {
		e.Notify()
		time.Sleep(time.Millisecond)
	}
	if n := s.lists.Load(); n != 1 {
		t.Errorf("the endpoints were read %d times by 1 round and 20 wake-ups while none changed, want 1", n)
	}

	ep, _ := f.endpoint(t, t.Context(), rc.srv.URL, "")
	f.store.add("1900000109")
	notifyUntil(t, e, func() bool { return len(rc.requests()) == 1 })

	mu.Lock()
	gone = true
	mu.Unlock()
	f.store.add("1900000109") // woken as its commit would
	notifyUntil(t, e, func() bool {
		ds, err := f.store.ListWebhookDeliveries(t.Context(), service.WebhookDeliveryFilter{EndpointID: ep.ID})
		return err == nil && len(ds) == 2 && ds[1].State == service.WebhookDeliveryFailed
	})
	mu.Lock()
	gone = false
	mu.Unlock()
	reads := s.lists.Load()
	addAndWake(f, e)
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("%d requests, want 2: a disabled endpoint was served", n)
	}
	if _, err := f.svc.EnableWebhookEndpoint(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	notifyUntil(t, e, func() bool { return len(rc.requests()) == 3 })
	if s.lists.Load() == reads {
		t.Error("the endpoints were not read again after the service enabled one")
	}

	if err := f.svc.DeleteWebhookEndpoint(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	reads = s.lists.Load()
	addAndWake(f, e)
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d requests, want 3: a deleted endpoint was served", n)
	}
	if s.lists.Load() == reads {
		t.Error("the endpoints were not read again after the service deleted one")
	}
}

// TestAnotherReplicasEndpointsAreSeenWithinTheInterval: endpoints another
// replica on the shared store creates, deletes or enables (its service
// does not tell this engine) are served, or no longer served, from the
// next round of the ticker on.
func TestAnotherReplicasEndpointsAreSeenWithinTheInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, status(http.StatusOK))
	other := f.svc // another replica's service: it tells no engine here
	e := New(Config{RetrySchedule: []time.Duration{0}, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second}, f.store, encode)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = e.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	time.Sleep(20 * time.Millisecond) // the first round has read no endpoint

	ep, _ := f.endpoint(t, t.Context(), rc.srv.URL, "")
	f.store.add("1900000109")
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))

	if err := other.DeleteWebhookEndpoint(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	f.store.add("1900000109")
	for range 10 {
		e.Notify() // a cached id of a deleted endpoint is read, not served
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests, want 1: an endpoint another replica deleted was served", n)
	}
}
