package webhook

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// TestEnginesShareAnEndpointByLease: two engines on one store (two
// replicas) serve an endpoint one at a time, under its lease: with one
// attempt in flight, the receiver never sees two at once, and gets each
// event once, in order.
func TestEnginesShareAnEndpointByLease(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		events   int
		answer   time.Duration
		leaseTTL time.Duration
	}{
		{"short attempts", 30, 3 * time.Millisecond, 0},
		// Serving outlasts the lease several times over: it is renewed.
		{"serving outlasts the lease", 8, 250 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shareAnEndpoint(t, tt.events, tt.answer, tt.leaseTTL)
		})
	}
}

func shareAnEndpoint(t *testing.T, events int, answer, leaseTTL time.Duration) {
	f := newFixture(t)
	f.inFlight, f.leaseTTL = 1, leaseTTL
	var now, most atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(answer)
		now.Add(-1)
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	var want []string
	for range events {
		want = append(want, f.store.add("1900000109").ID)
	}
	f.start(t)
	f.start(t)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, len(want)))
	if ids := verify(t, secret, rc.requests()); !slices.Equal(ids, want) {
		t.Errorf("webhook-ids in arrival order = %v, want each event once, in order: %v", ids, want)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d attempts were under way at once to an endpoint with one in flight, want 1: both engines served it", m)
	}
}

// TestEndpointWaitsForAnExpiredLease: an endpoint whose lease another
// replica holds (one that died, say) is not served until the lease
// expires; then it is.
func TestEndpointWaitsForAnExpiredLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, status(http.StatusOK))
	ep, _ := f.endpoint(t, t.Context(), rc.srv.URL, "")
	const ttl = 400 * time.Millisecond
	held, err := f.store.ClaimLease(t.Context(), "webhook-endpoint/"+ep.ID, time.Now(), service.Lease{Owner: "dead-replica", TTL: ttl})
	if err != nil || !held {
		t.Fatalf("ClaimLease: %v %v", held, err)
	}
	start := time.Now()
	f.store.add("1900000109")
	f.start(t)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))
	if took := time.Since(start); took < ttl*3/4 {
		t.Errorf("delivered %s after the other replica's lease was taken, before it expired (%s)", took, ttl)
	}
}
