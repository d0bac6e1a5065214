package sandbox_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestRetrySchedule(t *testing.T) {
	t.Parallel()
	const scale = 0.001 // 15 s -> 15 ms
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds), 500, 500, 503, 404)
	e := newEnv(t, sandbox.Options{TimeScale: scale})
	e.signedContract(t, "C800", "oRetry", recv.URL)

	log, err := e.sb.WaitDelivered(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 {
		t.Fatalf("%d attempts, want 5: %+v", len(log), log)
	}
	wantStatus := []int{500, 500, 503, 404, 200}
	delays := sandbox.RetryDelays()
	for i, d := range log {
		if d.Attempt != i+1 || d.StatusCode != wantStatus[i] || d.NotificationID != log[0].NotificationID ||
			d.EventType != sandbox.EventSign || d.URL != recv.URL || d.Delivered != (i == 4) || d.Final != (i == 4) {
			t.Errorf("attempt %d: %+v", i+1, d)
		}
		if i == 0 {
			continue
		}
		gap, want := d.Time.Sub(log[i-1].Time), time.Duration(float64(delays[i-1])*scale)
		if gap < want || gap > want+time.Second {
			t.Errorf("gap before attempt %d = %v, want %v (+ delivery time)", i+1, gap, want)
		}
	}

	// Each attempt reached the merchant re-signed: same id, fresh nonce.
	nonces := map[string]bool{}
	for i := range 5 {
		n := <-recv.got
		if n.err != nil {
			t.Fatalf("attempt %d rejected by the SDK: %v", i+1, n.err)
		}
		if n.req.ID != log[0].NotificationID {
			t.Errorf("attempt %d id %s, want %s", i+1, n.req.ID, log[0].NotificationID)
		}
		nonces[n.header.Get("Wechatpay-Nonce")] = true
	}
	if len(nonces) != 5 {
		t.Errorf("%d distinct nonces over 5 attempts", len(nonces))
	}
}

func TestDeliveryGivesUpAfterTenAttempts(t *testing.T) {
	t.Parallel()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	e := newEnv(t, sandbox.Options{TimeScale: 0.00001}) // the 4 h schedule in about 150 ms
	e.signedContract(t, "C810", "oGiveUp", failing.URL)
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	log := e.sb.Deliveries()
	if len(log) != sandbox.MaxAttempts || sandbox.MaxAttempts != 10 {
		t.Fatalf("%d attempts, want 10", len(log))
	}
	for i, d := range log {
		if d.Delivered || d.Final != (i == 9) || d.StatusCode != 503 {
			t.Errorf("attempt %d: %+v", i+1, d)
		}
	}
}

func TestDeliveryTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	calls := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- struct{}{}
		io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		if len(calls) == 1 {        // first call: hang until the sandbox gives up on it
			select {
			case <-r.Context().Done():
			case <-time.After(waitTimeout):
			}
		}
	}))
	t.Cleanup(slow.Close)
	e := newEnv(t, sandbox.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
	e.signedContract(t, "C820", "oSlow", slow.URL)
	log, err := e.sb.WaitDelivered(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Error == "" || log[0].StatusCode != 0 || !log[1].Delivered {
		t.Errorf("log %+v, want a timeout then a delivery", log)
	}
}

func TestCloseStopsPendingRetries(t *testing.T) {
	t.Parallel()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	e := newEnv(t, sandbox.Options{TimeScale: 1}) // the next retry is 15 s away
	e.signedContract(t, "C830", "oClose", failing.URL)
	if _, err := e.sb.WaitAttempts(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.sb.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sb.Deliveries()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestTerminationWithoutURLIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C840", "oNoURL", e.sinkURL)
	if _, err := e.sb.WaitDelivered(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sb.UserTerminate(c.ContractID); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if log := e.sb.Deliveries(); len(log) != 1 || log[0].EventType != sandbox.EventSign {
		t.Errorf("log %+v, want only the PAPAY.SIGN", log)
	}
}
