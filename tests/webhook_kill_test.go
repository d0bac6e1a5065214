package tests

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// TestWebhookSurvivesSIGKILL: papayd as a process is killed with SIGKILL
// while its first webhook delivery is in flight (the receiver holds the
// request open) and restarted on the same data directory. The event is
// then delivered again, with the same webhook-id and a valid signature,
// the delivery ends DELIVERED, and every event written before the kill
// reaches the receiver.
func TestWebhookSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds papayd")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "papayd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, grpcAddr := freePort(t), freePort(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "papayd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	proc := &soakProcess{t: t, bin: bin, http: httpAddr, log: logFile, notifyURLs: []string{"http://" + httpAddr + "/wechatpay/notify"},
		env: append(os.Environ(), "PAPAYD_GRPC_ADDR="+grpcAddr, "PAPAYD_HTTP_ADDR="+httpAddr, "PAPAYD_ADMIN_ADDR=",
			"PAPAYD_DATA_DIR="+t.TempDir(), "PAPAYD_AUTH=none", "PAPAYD_SANDBOX_TIME_SCALE=0.0001", "PAPAYD_LOG_LEVEL=warn",
			"PAPAYD_WEBHOOK_RETRY_SCHEDULE=0s,200ms,200ms,200ms")}

	// The receiver holds its first request open until papayd dies (or the
	// test ends), and answers 200 to the others.
	var mu sync.Mutex
	var got []hookRequest
	inFlight := make(chan string, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(got)
		got = append(got, hookRequest{r.Header.Clone(), body})
		mu.Unlock()
		if n == 0 {
			inFlight <- r.Header.Get("webhook-id")
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for the handlers
	requests := func() []hookRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookRequest(nil), got...)
	}

	proc.start()
	defer proc.kill()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &papayd{t: t, conn: conn, base: "http://" + httpAddr, http: &http.Client{Timeout: 10 * time.Second},
		agreements: papayv1.NewAgreementServiceClient(conn), charges: papayv1.NewChargeServiceClient(conn)}
	hooks := papayv1.NewWebhookServiceClient(conn)
	ep, err := hooks.CreateWebhookEndpoint(context.Background(), &papayv1.CreateWebhookEndpointRequest{Url: srv.URL + "/hook"})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(ep.GetSecret())
	if err != nil {
		t.Fatal(err)
	}

	// Events: an agreement presigned and signed (agreement.created, then
	// agreement.signed), all written before the kill.
	pre := presign(t, p, "oHookKill")
	p.userSigns(pre.GetSessionId(), nil)
	waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	var first string
	select {
	case first = <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery reached the receiver")
	}
	before := allEvents(t, p.evts(), 0)
	if len(before) < 2 || before[0].GetId() != first {
		t.Fatalf("events before the kill: %v; the delivery in flight is of %s", before, first)
	}

	// Other deliveries may have started beside the held one (up to
	// PAPAYD_WEBHOOK_IN_FLIGHT at once): none of the batch is recorded
	// while one of it is under way.
	atKill := len(requests())
	proc.kill()
	proc.start()

	// Every event before the kill reaches the receiver after the restart,
	// the held one again with its id; every request is signed.
	eventually(t, "the events delivered after the restart", func() bool {
		ids := map[string]bool{}
		for _, r := range requests()[atKill:] {
			ids[r.header.Get("webhook-id")] = true
		}
		for _, e := range before {
			if !ids[e.GetId()] {
				return false
			}
		}
		return true
	})
	rs := requests()
	for i, r := range rs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("request %d (%s): signature: %v", i, r.header.Get("webhook-id"), err)
		}
	}

	// The deliveries end DELIVERED, none lost.
	var ds []*papayv1.WebhookDelivery
	eventually(t, "every delivery DELIVERED", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := hooks.ListWebhookDeliveries(ctx, &papayv1.ListWebhookDeliveriesRequest{EndpointId: ep.GetEndpoint().GetId()},
			grpc.WaitForReady(true))
		if err != nil {
			return false
		}
		ds = resp.GetDeliveries()
		if len(ds) < len(before) {
			return false
		}
		for _, d := range ds {
			if d.GetState() != "DELIVERED" {
				return false
			}
		}
		return true
	})
	byEvent := map[string]*papayv1.WebhookDelivery{}
	for _, d := range ds {
		byEvent[d.GetEventId()] = d
	}
	for _, e := range before {
		if d := byEvent[e.GetId()]; d == nil || d.GetLastStatus() != http.StatusOK {
			t.Errorf("event %s (%s): delivery %v", e.GetId(), e.GetType(), d)
		}
	}
	t.Logf("%d events before the kill, %d requests, %d deliveries", len(before), len(rs), len(ds))
}
