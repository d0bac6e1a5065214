package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/storetest"
	"github.com/papayd/papayd/internal/webhook"
)

// BenchmarkWebhookDrain measures the webhook engine delivering a backlog
// of b.N charge events to one local endpoint (SQLite store, the default
// PAPAYD_WEBHOOK_IN_FLIGHT), and, as "bare", a bare net/http client
// POSTing as many signed bodies, as many at once: figure 7's drain and its
// baseline, long enough to compare. ns/op is per delivery; cpu-µs/delivery
// counts the whole process (the receiver too) while it runs.
//
//	go test -run '^$' -bench WebhookDrain -benchtime 20000x ./internal/app
func BenchmarkWebhookDrain(b *testing.B) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	b.Run("engine", func(b *testing.B) {
		ctx, cancel := context.WithCancel(b.Context())
		defer cancel()
		store, err := db.Open(ctx, filepath.Join(b.TempDir(), "papayd.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		at := time.Now().Add(-time.Minute)
		rcv := newReceiver(b.N)
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		ep := service.StoredWebhookEndpoint{WebhookEndpoint: service.WebhookEndpoint{ID: "we_bench", URL: srv.URL,
			State: service.WebhookEndpointEnabled, CreateTime: at, UpdateTime: at}, Secret: secret}
		c := storetest.FullCharge("T1", "X1", at)
		for i := 0; i < b.N; i += 500 {
			if err := store.InTx(ctx, func(tx service.Tx) error {
				if i == 0 {
					if err := tx.CreateWebhookEndpoint(ctx, ep); err != nil {
						return err
					}
				}
				for k := i; k < min(i+500, b.N); k++ {
					c.OutTradeNo = fmt.Sprint("T", k)
					if err := tx.AppendEvent(ctx, service.Event{Type: service.EventChargeSucceeded, CreateTime: at, SubMchID: c.SubMchID, Charge: &c}); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		e := webhook.New(webhook.Config{}, webhookStore{store, func(string) {}}, encodeEvent)
		b.ResetTimer()
		cpu0 := processCPU(b)
		go func() { _ = e.Run(ctx) }()
		rcv.wait(b)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
	})
	b.Run("bare", func(b *testing.B) {
		rcv := newReceiver(b.N)
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		body := bytes.Repeat([]byte("x"), 1800) // about a charge event's size
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: webhook.DefaultInFlight}}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		cpu0 := processCPU(b)
		for range webhook.DefaultInFlight {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
					id := fmt.Sprint("msg_", i)
					sig, err := webhook.Sign(secret, id, time.Now(), body)
					if err != nil {
						b.Error(err)
						return
					}
					req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
					req.Header.Set("webhook-id", id)
					req.Header.Set("webhook-signature", sig)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		rcv.wait(b)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/delivery")
	})
}

// processCPU is the CPU time the process (engine, receiver and all) has
// used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// receiver counts the distinct webhook-ids it is sent, answering 200.
type receiver struct {
	want int
	mu   sync.Mutex
	ids  map[string]bool
	done chan struct{}
}

func newReceiver(want int) *receiver {
	return &receiver{want: want, ids: map[string]bool{}, done: make(chan struct{})}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.ReadAll(req.Body)
	r.mu.Lock()
	r.ids[req.Header.Get("webhook-id")] = true
	if len(r.ids) == r.want {
		close(r.done)
	}
	r.mu.Unlock()
}

func (r *receiver) wait(b *testing.B) {
	select {
	case <-r.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d deliveries received", len(r.ids), r.want)
	}
}
