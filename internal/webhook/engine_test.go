package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// events is the events store until the outbox lands: a slice served as
// ListEvents would, next to the real SQLite store of the rest.
type events struct {
	*db.DB
	mu  sync.Mutex
	evs []service.Event
}

func (s *events) ListEvents(_ context.Context, f service.EventFilter) ([]service.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []service.Event
	for _, e := range s.evs {
		if e.Sequence > f.AfterSequence && (len(f.Types) == 0 || slices.Contains(f.Types, e.Type)) &&
			(len(f.SubMchIDs) == 0 || slices.Contains(f.SubMchIDs, e.SubMchID)) &&
			(f.SubMchID == "" || e.SubMchID == f.SubMchID) && (f.PageSize == 0 || len(out) < f.PageSize) {
			out = append(out, e)
		}
	}
	return out, nil
}

// add appends an event of sub-merchant sub, created now.
func (s *events) add(sub string) service.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.evs) + 1
	e := service.Event{ID: fmt.Sprintf("evt_%03d", n), Sequence: uint64(n), Type: service.EventChargeSucceeded,
		CreateTime: time.Now(), SubMchID: sub}
	s.evs = append(s.evs, e)
	return e
}

func encode(e service.Event) ([]byte, error) {
	return json.Marshal(map[string]string{"id": e.ID, "type": string(e.Type), "sub_mchid": e.SubMchID})
}

type clock struct{}

func (clock) Now() time.Time { return time.Now() }

type fixture struct {
	path     string
	store    *events
	svc      *service.Service
	inFlight int           // the engine's Config.InFlight; 0: its default
	batch    int           // the engine's Config.BatchSize; 0: its default
	leaseTTL time.Duration // the engine's Config.LeaseTTL; 0: its default
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "papayd.db")}
	f.open(t)
	return f
}

// open opens the database file (again) and a service on it.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	d, err := db.Open(t.Context(), f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	var evs []service.Event
	if f.store != nil {
		evs = f.store.evs
		_ = f.store.Close()
	}
	f.store = &events{DB: d, evs: evs}
	f.svc = service.New(service.Config{}, d, nil, clock{}, nil, nil)
}

// endpoint creates an endpoint of url for ctx's caller.
func (f *fixture) endpoint(t *testing.T, ctx context.Context, url, sub string) (service.WebhookEndpoint, string) {
	t.Helper()
	ep, secret, err := f.svc.CreateWebhookEndpoint(ctx, service.WebhookEndpointInput{URL: url, SubMchID: sub})
	if err != nil {
		t.Fatal(err)
	}
	return ep, secret
}

// start runs an engine until the test ends or stop is called.
func (f *fixture) start(t *testing.T, schedule ...time.Duration) (stop func()) {
	t.Helper()
	if len(schedule) == 0 {
		schedule = []time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	}
	e := New(Config{RetrySchedule: schedule, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second,
		InFlight: f.inFlight, BatchSize: f.batch, LeaseTTL: f.leaseTTL}, f.store, encode)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor polls the deliveries of endpoint id until ok says they are
// done.
func (f *fixture) waitFor(t *testing.T, id string, ok func([]service.WebhookDelivery) bool) []service.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := f.store.ListWebhookDeliveries(t.Context(), service.WebhookDeliveryFilter{EndpointID: id})
		if err != nil {
			t.Fatal(err)
		}
		if ok(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s: %+v", id, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func all(state service.WebhookDeliveryState, n int) func([]service.WebhookDelivery) bool {
	return func(ds []service.WebhookDelivery) bool {
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.State != state {
				return false
			}
		}
		return true
	}
}

// request is one POST a receiver got.
type request struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an endpoint that answers with answer(n), n counting from 0.
type receiver struct {
	mu     sync.Mutex
	got    []request
	answer func(w http.ResponseWriter, n int)
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, n int)) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, request{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		rc.answer(w, n)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// verify checks every request with the Standard Webhooks library, not
// papayd's signer, and returns their webhook-ids.
func verify(t *testing.T, secret string, rs []request) []string {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, r := range rs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		ids = append(ids, r.header.Get("webhook-id"))
	}
	return ids
}

func status(code int) func(http.ResponseWriter, int) {
	return func(w http.ResponseWriter, _ int) { w.WriteHeader(code) }
}

func TestRetriedUntilDelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	ev := f.store.add("1900000109")
	f.start(t)
	ds := f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))
	if d := ds[0]; d.Attempts != 3 || d.EventID != ev.ID || d.LastStatus != 200 || d.LastError != "" {
		t.Errorf("delivery = %+v", d)
	}
	rs := rc.requests()
	if ids := verify(t, secret, rs); !slices.Equal(ids, []string{ev.ID, ev.ID, ev.ID}) {
		t.Errorf("webhook-ids = %v", ids)
	}
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.inFlight = 1 // so that the second delivery would start only after the first
	rc := newReceiver(t, status(http.StatusGone))
	ep, _ := f.endpoint(t, t.Context(), rc.srv.URL, "")
	f.store.add("1900000109")
	f.store.add("1900000109")
	f.start(t)
	f.waitFor(t, ep.ID, func(ds []service.WebhookDelivery) bool {
		return len(ds) == 2 && ds[0].State == service.WebhookDeliveryFailed
	})
	got, err := f.svc.GetWebhookEndpoint(t.Context(), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != service.WebhookEndpointDisabled || got.DisableReason == "" {
		t.Errorf("endpoint = %+v", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d requests to a disabled endpoint, want 1", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	f.store.add("1900000109")
	f.start(t)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))
	rs := rc.requests()
	verify(t, secret, rs)
	if len(rs) != 2 || rs[1].at.Sub(rs[0].at) < time.Second {
		t.Errorf("%d requests; the retry came %v after the 429, want at least 1s", len(rs), rs[len(rs)-1].at.Sub(rs[0].at))
	}
}

func TestRedirectIsAFailureAndRedeliverRequeues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	target := newReceiver(t, status(http.StatusOK))
	var mu sync.Mutex
	redirect := true
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if redirect {
			w.Header().Set("Location", target.srv.URL)
			w.WriteHeader(http.StatusFound)
		}
	})
	ep, _ := f.endpoint(t, t.Context(), rc.srv.URL, "")
	ev := f.store.add("1900000109")
	f.start(t, 0, 10*time.Millisecond) // two attempts
	ds := f.waitFor(t, ep.ID, all(service.WebhookDeliveryFailed, 1))
	if d := ds[0]; d.Attempts != 2 || d.LastStatus != http.StatusFound {
		t.Errorf("delivery = %+v", d)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}

	mu.Lock()
	redirect = false
	mu.Unlock()
	if _, err := f.svc.Redeliver(t.Context(), ev.ID); err != nil {
		t.Fatal(err)
	}
	ds = f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))
	if d := ds[0]; d.Attempts != 1 {
		t.Errorf("redelivered = %+v", d)
	}
}

func TestInOrderPerEndpointOneInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.inFlight = 1
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n%2 == 0 { // every event fails once first
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	var want []string
	for range 5 {
		ev := f.store.add("1900000109")
		want = append(want, ev.ID, ev.ID)
	}
	f.start(t)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 5))
	if ids := verify(t, secret, rc.requests()); !slices.Equal(ids, want) {
		t.Errorf("webhook-ids in arrival order = %v, want %v", ids, want)
	}
}

// TestBatchesRecordedWhileTheNextIsSent: a batch's attempts are recorded
// while the next batch is sent (serve), and the next batch starts after
// the last delivery sent, so across many batches every event arrives once
// per attempt, in order, and ends DELIVERED; a failure in a later batch
// still holds back the rest until it is delivered.
func TestBatchesRecordedWhileTheNextIsSent(t *testing.T) {
	t.Parallel()
	const n = 23
	f := newFixture(t)
	f.inFlight, f.batch = 1, 4
	var failed string
	rc := newReceiver(t, func(w http.ResponseWriter, i int) {
		if i == 13 { // the 14th event, in the fourth batch, fails once
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	var want []string
	for i := range n {
		ev := f.store.add("1900000109")
		want = append(want, ev.ID)
		if i == 13 {
			failed = ev.ID
			want = append(want, ev.ID)
		}
	}
	f.start(t)
	ds := f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, n))
	if ids := verify(t, secret, rc.requests()); !slices.Equal(ids, want) {
		t.Errorf("webhook-ids in arrival order = %v, want %v", ids, want)
	}
	for _, d := range ds {
		if want := 1 + btoi(d.EventID == failed); d.Attempts != want {
			t.Errorf("%s: %d attempts, want %d", d.EventID, d.Attempts, want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAttemptsReuseTheirConnections: the attempts under way at once to an
// endpoint keep their connections between batches, instead of dialling a
// new one for all but two of them (http.DefaultTransport's idle bound:
// about 120 connections for these 400 deliveries). An attempt that starts
// just as another one's answer was read may still dial one: net/http puts
// the answered connection back in its idle pool a moment after the body
// was read (a loaded machine showed 10 instead of 8), hence the slack.
func TestAttemptsReuseTheirConnections(t *testing.T) {
	t.Parallel()
	const inFlight, n = 8, 400
	f := newFixture(t)
	f.inFlight = inFlight
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(time.Millisecond) // so that the attempts overlap
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	ep, _ := f.endpoint(t, t.Context(), srv.URL, "")
	for range n {
		f.store.add("1900000109")
	}
	f.start(t)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, n))
	if c := conns.Load(); c > 2*inFlight {
		t.Errorf("%d deliveries, %d at once, opened %d connections; want at most %d", n, inFlight, c, 2*inFlight)
	}
}

func TestStoppedMidDeliveryResumesAfterRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, n int) {
		if n == 0 {
			arrived <- struct{}{}
			<-release // hangs until the engine is gone
		}
	})
	defer close(release)
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	ev := f.store.add("1900000109")
	stop := f.start(t)
	<-arrived
	stop()
	ds, err := f.store.ListWebhookDeliveries(t.Context(), service.WebhookDeliveryFilter{EndpointID: ep.ID})
	if err != nil || len(ds) != 1 || ds[0].State != service.WebhookDeliveryPending || ds[0].Attempts != 0 {
		t.Fatalf("after the stop: %+v %v", ds, err)
	}

	f.open(t) // a new process on the same file
	f.start(t)
	ds = f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, 1))
	if ds[0].EventID != ev.ID {
		t.Errorf("delivery = %+v", ds[0])
	}
	if ids := verify(t, secret, rc.requests()); !slices.Equal(ids, []string{ev.ID, ev.ID}) {
		t.Errorf("webhook-ids = %v", ids)
	}
}

func TestLimitedCallerReceivesItsSubMerchantsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mine := newReceiver(t, status(http.StatusNoContent))
	everyone := newReceiver(t, status(http.StatusOK))
	limited := service.WithCaller(t.Context(), service.Caller{KeyID: "k1", Name: "shop-a", SubMchIDs: []string{"A"}})
	epA, secret := f.endpoint(t, limited, mine.srv.URL, "") // empty: the key's own set
	if !slices.Equal(epA.SubMchIDs, []string{"A"}) {
		t.Fatalf("endpoint sub_mchids = %v", epA.SubMchIDs)
	}
	epAll, _ := f.endpoint(t, t.Context(), everyone.srv.URL, "")
	a := f.store.add("A")
	f.store.add("B")
	f.start(t)
	f.waitFor(t, epAll.ID, all(service.WebhookDeliveryDelivered, 2))
	f.waitFor(t, epA.ID, all(service.WebhookDeliveryDelivered, 1))
	if ids := verify(t, secret, mine.requests()); !slices.Equal(ids, []string{a.ID}) {
		t.Errorf("the limited caller's endpoint got %v", ids)
	}
}

// TestInFlightWindow: with InFlight 4, up to 4 attempts are under way at
// once, and an attempt that leaves its delivery PENDING holds back every
// delivery not started yet until it is due again.
func TestInFlightWindow(t *testing.T) {
	t.Parallel()
	const (
		inFlight, n = 4, 12
		retry       = 300 * time.Millisecond
	)
	f := newFixture(t)
	f.inFlight = inFlight
	var (
		mu       sync.Mutex
		under    int                      // requests being answered
		most     int                      // the most at once
		arrived  = map[string]time.Time{} // each id's last arrival
		answered = map[string]int{}       // 2xx answers per id
		stalled  string                   // answered 503 at once, the first time
		failAt   time.Time                // when
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		under++
		most = max(most, under)
		arrived[id] = time.Now()
		fail := id == stalled && failAt.IsZero()
		mu.Unlock()
		if !fail {
			time.Sleep(30 * time.Millisecond) // so that the 503 is the first answer
		}
		mu.Lock()
		under--
		if fail {
			failAt = time.Now()
		} else {
			answered[id]++
		}
		mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	ep, _ := f.endpoint(t, t.Context(), srv.URL, "")
	var ids []string
	mu.Lock()
	for range n {
		ids = append(ids, f.store.add("1900000109").ID)
	}
	stalled = ids[1]
	mu.Unlock()
	f.start(t, 0, retry)
	f.waitFor(t, ep.ID, all(service.WebhookDeliveryDelivered, n))
	mu.Lock()
	defer mu.Unlock()
	if most > inFlight || most < 2 {
		t.Errorf("at most %d attempts were under way at once, want 2 to %d", most, inFlight)
	}
	for _, id := range ids {
		if answered[id] != 1 {
			t.Errorf("%s answered 200 %d times, want 1", id, answered[id])
		}
	}
	// ids[:inFlight] started before the 503 came back; the later ones
	// wait until the stalled delivery is due again, retry after it was
	// sent (which was before failAt, by less than a third of retry).
	for _, id := range ids[inFlight:] {
		if wait := arrived[id].Sub(failAt); wait < retry*2/3 {
			t.Errorf("%s arrived %v after the 503 of %s, want about %v", id, wait, stalled, retry)
		}
	}
}

// TestEnableResumesAfterGone: an endpoint a 410 disabled, enabled again,
// receives the events appended while it was disabled, in order.
func TestEnableResumesAfterGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.inFlight = 1
	var mu sync.Mutex
	gone := true
	rc := newReceiver(t, func(w http.ResponseWriter, _ int) {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
		}
	})
	ep, secret := f.endpoint(t, t.Context(), rc.srv.URL, "")
	first := f.store.add("1900000109")
	f.start(t)
	f.waitFor(t, ep.ID, func(ds []service.WebhookDelivery) bool {
		return len(ds) == 1 && ds[0].State == service.WebhookDeliveryFailed
	})
	var later []string
	for range 3 {
		later = append(later, f.store.add("1900000109").ID)
	}
	time.Sleep(100 * time.Millisecond) // a disabled endpoint takes none of them
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("%d requests to a disabled endpoint, want 1", n)
	}
	mu.Lock()
	gone = false
	mu.Unlock()
	got, err := f.svc.EnableWebhookEndpoint(t.Context(), ep.ID)
	if err != nil || got.State != service.WebhookEndpointEnabled || got.DisableReason != "" {
		t.Fatalf("enable: %+v, %v", got, err)
	}
	f.waitFor(t, ep.ID, func(ds []service.WebhookDelivery) bool {
		return len(ds) == 4 && ds[3].State == service.WebhookDeliveryDelivered
	})
	ids := verify(t, secret, rc.requests())
	if want := append([]string{first.ID}, later...); !slices.Equal(ids, want) {
		t.Errorf("webhook-ids = %v, want %v (the 410, then the events appended while disabled)", ids, want)
	}
	if _, err := f.svc.EnableWebhookEndpoint(t.Context(), "we_none"); !errors.Is(err, service.ErrWebhookEndpointNotFound) {
		t.Errorf("enabling an unknown endpoint: %v", err)
	}
	if err := f.svc.DeleteWebhookEndpoint(t.Context(), ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EnableWebhookEndpoint(t.Context(), ep.ID); !errors.Is(err, service.ErrWebhookEndpointNotFound) {
		t.Errorf("enabling a deleted endpoint: %v", err)
	}
}
