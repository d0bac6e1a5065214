package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

// hookRequest is one POST a receiver got.
type hookRequest struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint on 127.0.0.1 answering the status answer
// returns for its n-th request (from 0).
type receiver struct {
	*httptest.Server
	answer func(n int) int

	mu  sync.Mutex
	got []hookRequest
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, hookRequest{req.Header.Clone(), body})
		r.mu.Unlock()
		w.WriteHeader(r.answer(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// createEndpoint creates an endpoint of agreement.signed events over REST
// and returns it and its secret.
func createEndpoint(t *testing.T, p *papayd, k apiKey, url string) (*papayv1.WebhookEndpoint, string) {
	t.Helper()
	st, raw := p.rest(k, http.MethodPost, "/v1/webhook-endpoints",
		mustJSON(t, map[string]any{"url": url, "event_types": []string{"agreement.signed"}}))
	var r papayv1.CreateWebhookEndpointResponse
	if st != http.StatusOK || protojson.Unmarshal(raw, &r) != nil {
		t.Fatalf("POST /v1/webhook-endpoints (key %s): HTTP %d %s", k.name, st, raw)
	}
	return r.GetEndpoint(), r.GetSecret()
}

// deliveries reads an endpoint's deliveries over REST.
func deliveries(t *testing.T, p *papayd, k apiKey, endpointID, query string) []*papayv1.WebhookDelivery {
	t.Helper()
	st, raw := p.rest(k, http.MethodGet, "/v1/webhook-endpoints/"+endpointID+"/deliveries"+query, nil)
	var r papayv1.ListWebhookDeliveriesResponse
	if st != http.StatusOK || protojson.Unmarshal(raw, &r) != nil {
		t.Fatalf("GET deliveries of %s: HTTP %d %s", endpointID, st, raw)
	}
	return r.GetDeliveries()
}

// TestWebhookDelivery: an endpoint answering 500 twice, then 200, gets the
// agreement.signed event three times, with one webhook-id and signatures
// the Standard Webhooks library accepts, as the JSON GET /v1/events/{id}
// answers; the delivery ends DELIVERED; RedeliverEvent sends it once more.
// An endpoint of a key limited to another sub-merchant gets nothing, one of
// a key limited to the sandbox's gets the event; one answering 410 is
// disabled.
func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	setSandboxSubMchID(t, dir, subMchA)
	scopes := []service.Scope{service.ScopeWebhooksWrite, service.ScopeEventsRead,
		service.ScopeAgreementsRead, service.ScopeAgreementsWrite}
	key := createKey(t, dir, service.KeyInput{Name: "hooks", Scopes: scopes})
	mine := createKey(t, dir, service.KeyInput{Name: "hooks-a", Scopes: scopes, SubMchIDs: []string{subMchA}})
	other := createKey(t, dir, service.KeyInput{Name: "hooks-b", Scopes: scopes, SubMchIDs: []string{subMchB}})
	p := startWith(t, dir, map[string]string{"PAPAYD_AUTH": "keys", "PAPAYD_KEY_RATE": "10000",
		"PAPAYD_WEBHOOK_RETRY_SCHEDULE": "0s,200ms,200ms,200ms"})

	flaky := newReceiver(t, func(n int) int {
		if n < 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	ok := func(int) int { return http.StatusOK }
	recvA, recvB := newReceiver(t, ok), newReceiver(t, ok)
	gone := newReceiver(t, func(int) int { return http.StatusGone })
	ep, secret := createEndpoint(t, p, key, flaky.URL+"/hook")
	epA, _ := createEndpoint(t, p, mine, recvA.URL)
	epB, _ := createEndpoint(t, p, other, recvB.URL)
	epGone, _ := createEndpoint(t, p, key, gone.URL)
	if ep.GetState() != "ENABLED" || slices.Compare(epA.GetSubMchids(), []string{subMchA}) != 0 ||
		slices.Compare(epB.GetSubMchids(), []string{subMchB}) != 0 {
		t.Fatalf("endpoints: %v / %v / %v", ep, epA, epB)
	}

	signedWith(t, p, key, "HOOK-1", "oHook")
	eventually(t, "three attempts", func() bool { return len(flaky.requests()) >= 3 })
	var ds []*papayv1.WebhookDelivery
	eventually(t, "DELIVERED", func() bool {
		ds = deliveries(t, p, key, ep.GetId(), "")
		return len(ds) == 1 && ds[0].GetState() == "DELIVERED"
	})
	if d := ds[0]; d.GetAttempts() != 3 || d.GetLastStatus() != 200 || d.GetEventType() != "agreement.signed" || d.GetSubMchid() != subMchA {
		t.Errorf("delivery: %v", d)
	}
	if f := deliveries(t, p, key, ep.GetId(), "?state=FAILED"); len(f) != 0 {
		t.Errorf("FAILED deliveries: %v", f)
	}

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rs := flaky.requests()
	if len(rs) != 3 {
		t.Fatalf("%d requests, want 3", len(rs))
	}
	eventID := ds[0].GetEventId()
	for i, r := range rs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("request %d: signature: %v", i, err)
		}
		if id := r.header.Get("webhook-id"); id != eventID {
			t.Errorf("request %d: webhook-id %q, want %q", i, id, eventID)
		}
	}
	st, raw := p.rest(key, http.MethodGet, "/v1/events/"+eventID, nil)
	if st != http.StatusOK || string(raw) != string(rs[2].body) {
		t.Errorf("body:\n%s\nGET /v1/events/%s: HTTP %d\n%s", rs[2].body, eventID, st, raw)
	}
	var body struct {
		Event struct {
			ID, Sequence, Type string
		}
	}
	if err := json.Unmarshal(rs[2].body, &body); err != nil || body.Event.ID != eventID || body.Event.Sequence == "" {
		t.Errorf("body %s: %+v %v", rs[2].body, body, err)
	}

	// Sub-merchants: A's key's endpoint gets the event; B's key's none.
	eventually(t, "A's endpoint delivered", func() bool { return len(recvA.requests()) == 1 })
	if got := deliveries(t, p, other, epB.GetId(), ""); len(got) != 0 || len(recvB.requests()) != 0 {
		t.Errorf("B's endpoint: deliveries %v, %d requests", got, len(recvB.requests()))
	}

	// Redelivered on request, with the same id (to A's endpoint too: the
	// unlimited key sees it).
	if st, raw := p.rest(key, http.MethodPost, "/v1/events/"+eventID+":redeliver", []byte("{}")); st != http.StatusOK {
		t.Fatalf("redeliver: HTTP %d %s", st, raw)
	}
	eventually(t, "the redelivery", func() bool { return len(flaky.requests()) == 4 })
	if r := flaky.requests()[3]; r.header.Get("webhook-id") != eventID || wh.Verify(r.body, r.header) != nil {
		t.Errorf("redelivery: %v", r.header)
	}

	// 410 Gone: the delivery fails and the endpoint is disabled.
	eventually(t, "DISABLED", func() bool {
		st, raw := p.rest(key, http.MethodGet, "/v1/webhook-endpoints/"+epGone.GetId(), nil)
		var r papayv1.GetWebhookEndpointResponse
		return st == http.StatusOK && protojson.Unmarshal(raw, &r) == nil && r.GetEndpoint().GetState() == "DISABLED"
	})
	if got := deliveries(t, p, key, epGone.GetId(), "?state=FAILED"); len(got) != 1 || got[0].GetLastStatus() != 410 || len(gone.requests()) != 1 {
		t.Errorf("410 endpoint: deliveries %v, %d requests", got, len(gone.requests()))
	}

	// Deleted: gone from the list and from Get.
	if st, raw := p.rest(key, http.MethodDelete, "/v1/webhook-endpoints/"+epGone.GetId(), nil); st != http.StatusOK {
		t.Errorf("DELETE: HTTP %d %s", st, raw)
	}
	if st, _ := p.rest(key, http.MethodGet, "/v1/webhook-endpoints/"+epGone.GetId(), nil); st != http.StatusNotFound {
		t.Errorf("GET deleted endpoint: HTTP %d", st)
	}
	st, raw = p.rest(key, http.MethodGet, "/v1/webhook-endpoints", nil)
	var list papayv1.ListWebhookEndpointsResponse
	if st != http.StatusOK || protojson.Unmarshal(raw, &list) != nil || len(list.GetEndpoints()) != 3 {
		t.Errorf("GET /v1/webhook-endpoints: HTTP %d %s, want 3 endpoints", st, raw)
	}
}
