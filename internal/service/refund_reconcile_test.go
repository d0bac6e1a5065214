package service

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sendTimes is when each refund call was made, by out_refund_no, as
// the fake saw the clock.
type sendLog struct {
	mu    sync.Mutex
	clock *fakeClock
	times map[string][]time.Duration // since t0
}

func (l *sendLog) record(no string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.times == nil {
		l.times = map[string][]time.Duration{}
	}
	l.times[no] = append(l.times[no], l.clock.Now().Sub(t0))
}

func (l *sendLog) get() map[string][]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.times
}

// TestRefundSpacing: refunds of one charge asked for within a minute of
// the previous send are recorded PENDING, not refused, and sent by the
// reconciler one minute apart, in the order they were asked for.
func TestRefundSpacing(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	log := &sendLog{clock: f.clock}
	f.wc.refund = func(req RefundRequest) (RemoteRefund, error) {
		log.record(req.OutRefundNo)
		return acceptedRefund(req), nil
	}
	f.refund(t, refundIn("R1", 100))
	f.clock.advance(10 * time.Second)
	mark := f.lastSeq()
	r2 := f.refund(t, refundIn("R2", 200))
	want := Refund{OutRefundNo: "R2", OutTradeNo: "T1", TransactionID: "T-T1", Merchant: r2.Merchant, Reason: "returned",
		Amount: hkd(200), ChargeTotal: 1000, NotifyURL: "https://papayd.example/wechatpay/notify", State: RefundPending,
		CreateTime: t0.Add(10 * time.Second), UpdateTime: t0.Add(10 * time.Second), NextCheckTime: t0.Add(time.Minute)}
	if diff := cmp.Diff(want, r2); diff != "" {
		t.Fatalf("R2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]EventType{EventRefundCreated}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	f.clock.advance(10 * time.Second)
	if r3 := f.refund(t, refundIn("R3", 300)); r3.State != RefundPending || !r3.NextCheckTime.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("R3 waits behind R2: %+v", r3)
	}
	// Waiting refunds count against the total.
	if _, err := f.svc.CreateRefund(context.Background(), refundIn("R4", 401)); !errors.Is(err, ErrRefundExceedsCharge) {
		t.Fatalf("R4: %v", err)
	}
	// The reconciler, every 5 seconds for 3 minutes.
	for range 36 {
		f.clock.advance(5 * time.Second)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantSends := map[string][]time.Duration{"R1": {0}, "R2": {time.Minute}, "R3": {2 * time.Minute}}
	if diff := cmp.Diff(wantSends, log.get()); diff != "" {
		t.Fatalf("sends (-want +got):\n%s", diff)
	}
	for _, no := range []string{"R2", "R3"} {
		if r := f.storedRefund(t, no); r.State != RefundProcessing || r.Attempts != 1 {
			t.Fatalf("%s: %s after %d attempts", no, r.State, r.Attempts)
		}
	}
}

func TestRefundLostAnswer(t *testing.T) {
	t.Parallel()
	lost := func(RefundRequest) (RemoteRefund, error) {
		return RemoteRefund{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
	}
	t.Run("WeChat has it: recorded without a resend", func(t *testing.T) {
		t.Parallel()
		f := refundFixture(t)
		f.wc.refund = lost
		r, err := f.svc.CreateRefund(context.Background(), refundIn("R1", 300))
		if err != nil || r.State != RefundPending || r.LastError != "WECHATPAY_UNAVAILABLE" || !r.NextCheckTime.Equal(t0.Add(5*time.Second)) {
			t.Fatalf("after the timeout: %+v %v", r, err)
		}
		f.wc.refundQueryFn = func(q RefundQuery) (RemoteRefund, error) {
			if q.OutRefundNo != "R1" {
				t.Errorf("query %+v", q)
			}
			return remoteRefund("R1", 300, "SUCCESS"), nil
		}
		if rep := reconcile(t, f); rep.Refunds != 0 || f.refundQueryCount() != 0 {
			t.Fatalf("asked before it was due: %+v", rep)
		}
		f.clock.advance(5 * time.Second)
		mark := f.lastSeq()
		if rep := reconcile(t, f); rep.Refunds != 1 || rep.Errors != 0 {
			t.Fatalf("report %+v", rep)
		}
		r = f.storedRefund(t, "R1")
		if r.State != RefundSucceeded || r.RefundID != "R-R1" || r.LastError != "" || !r.NextCheckTime.IsZero() || len(f.refundSends()) != 1 {
			t.Fatalf("after reconcile: %+v, %d sends", r, len(f.refundSends()))
		}
		if diff := cmp.Diff([]EventType{EventRefundSucceeded}, f.eventTypes(mark)); diff != "" || f.refundedTotal(t) != 300 {
			t.Fatalf("events (-want +got):\n%s\nrefunded_total %d", diff, f.refundedTotal(t))
		}
		f.clock.advance(time.Hour)
		if rep := reconcile(t, f); rep.Refunds != 0 {
			t.Fatalf("a final refund is still due: %+v", rep)
		}
	})
	t.Run("WeChat never got it: resent, the same request", func(t *testing.T) {
		t.Parallel()
		f := refundFixture(t)
		f.wc.refund = lost
		f.refund(t, refundIn("R1", 300))
		f.wc.refund = nil
		// A new configuration changes nothing of what a resend sends.
		f.svc.cfg.NotifyURL = "https://new.example/wechatpay/notify"
		f.clock.advance(5 * time.Second)
		reconcile(t, f)
		r := f.storedRefund(t, "R1")
		sends := f.refundSends()
		if r.State != RefundProcessing || r.Attempts != 2 || len(sends) != 2 || f.refundQueryCount() != 1 {
			t.Fatalf("after reconcile: %+v; %d sends, %d queries", r, len(sends), f.refundQueryCount())
		}
		if diff := cmp.Diff(sends[0], sends[1]); diff != "" {
			t.Fatalf("the resend differs (-first +resend):\n%s", diff)
		}
	})
	t.Run("the query fails: asked again on the backoff", func(t *testing.T) {
		t.Parallel()
		f := refundFixture(t)
		f.wc.refund = lost
		f.refund(t, refundIn("R1", 300))
		f.wc.refundQueryFn = func(RefundQuery) (RemoteRefund, error) { return RemoteRefund{}, &RemoteError{HTTPStatus: 500} }
		f.clock.advance(5 * time.Second)
		if rep := reconcile(t, f); rep.Errors != 1 {
			t.Fatalf("report %+v", rep)
		}
		r := f.storedRefund(t, "R1")
		if r.State != RefundPending || len(f.refundSends()) != 1 || r.Checks != 1 || !r.NextCheckTime.Equal(t0.Add(20*time.Second)) {
			t.Fatalf("after a failed query: %+v, %d sends", r, len(f.refundSends()))
		}
	})
}

// TestRefundNotEnoughIsRetried: NOT_ENOUGH leaves the refund PENDING and
// the reconciler sends it again, with the same out_refund_no and request,
// on the backoff, until WeChat takes it.
func TestRefundNotEnoughIsRetried(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	log := &sendLog{clock: f.clock}
	refusals := 3
	f.wc.refund = func(req RefundRequest) (RemoteRefund, error) {
		log.record(req.OutRefundNo)
		if refusals > 0 {
			refusals--
			return RemoteRefund{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH", Message: "pool short"}
		}
		return acceptedRefund(req), nil
	}
	mark := f.lastSeq()
	r := f.refund(t, refundIn("R1", 300))
	if r.State != RefundPending || r.LastError != "NOT_ENOUGH" || !r.NextCheckTime.Equal(t0.Add(5*time.Second)) || r.FailureCode != "" {
		t.Fatalf("after NOT_ENOUGH: %+v", r)
	}
	for range 30 {
		f.clock.advance(5 * time.Second)
		reconcile(t, f)
	}
	r = f.storedRefund(t, "R1")
	if r.State != RefundProcessing || r.LastError != "" || r.Attempts != 4 {
		t.Fatalf("after the retries: %+v", r)
	}
	// Sent at once, then when due: 5s (FirstCheck), then 15s, 15s on the
	// backoff.
	want := map[string][]time.Duration{"R1": {0, 5 * time.Second, 20 * time.Second, 35 * time.Second}}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Fatalf("sends (-want +got):\n%s", diff)
	}
	sends := f.refundSends()
	for i := range sends {
		if diff := cmp.Diff(sends[0], sends[i]); diff != "" {
			t.Fatalf("send %d differs:\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]EventType{EventRefundCreated}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

// TestRefundOutRefundNoUsedAfterALostAnswer: a refusal answering a resend
// leads to a query, never straight to FAILED.
func TestRefundOutRefundNoUsedAfterALostAnswer(t *testing.T) {
	t.Parallel()
	used := &RemoteError{HTTPStatus: 403, Code: "OUT_REFUND_NO_USED", Message: "used"}
	for _, tc := range []struct {
		name    string
		refusal *RemoteError
		// after is WeChat's answer to the queries after the resend.
		after   func() (RemoteRefund, error)
		state   RefundState
		queries int
	}{
		{"WeChat has it after all", used, func() (RemoteRefund, error) { return remoteRefund("R1", 300, "SUCCESS"), nil },
			RefundSucceeded, 2},
		{"WeChat still shows none: left PENDING", used, func() (RemoteRefund, error) {
			return RemoteRefund{}, &RemoteError{HTTPStatus: 404, Code: "RESOURCE_NOT_EXISTS"}
		}, RefundPending, 2},
		{"the query fails: left PENDING", used, func() (RemoteRefund, error) {
			return RemoteRefund{}, &RemoteError{HTTPStatus: 503}
		}, RefundPending, 2},
		{"another refusal WeChat confirms: FAILED", &RemoteError{HTTPStatus: 403, Code: "USER_ACCOUNT_ABNORMAL"}, func() (RemoteRefund, error) {
			return RemoteRefund{}, &RemoteError{HTTPStatus: 404, Code: "RESOURCE_NOT_EXISTS"}
		}, RefundFailed, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := refundFixture(t)
			sends := 0
			f.wc.refund = func(RefundRequest) (RemoteRefund, error) {
				sends++
				if sends == 1 {
					return RemoteRefund{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
				}
				return RemoteRefund{}, tc.refusal
			}
			queries := 0
			f.wc.refundQueryFn = func(RefundQuery) (RemoteRefund, error) {
				queries++
				if queries == 1 {
					return RemoteRefund{}, &RemoteError{HTTPStatus: 404, Code: "RESOURCE_NOT_EXISTS"}
				}
				return tc.after()
			}
			f.refund(t, refundIn("R1", 300))
			f.clock.advance(5 * time.Second)
			reconcile(t, f)
			r := f.storedRefund(t, "R1")
			if r.State != tc.state || sends != 2 || queries != tc.queries {
				t.Fatalf("state %s after %d sends and %d queries; want %s", r.State, sends, queries, tc.state)
			}
			if tc.state == RefundPending && (r.LastError != tc.refusal.Code || r.NextCheckTime.IsZero()) {
				t.Fatalf("pending: %+v", r)
			}
			if tc.state == RefundFailed && r.FailureCode != tc.refusal.Code {
				t.Fatalf("failed: %+v", r)
			}
		})
	}
}

func TestRefundProcessingAndAbnormalAreQueried(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	status := "PROCESSING"
	var mu sync.Mutex
	f.wc.refundQueryFn = func(RefundQuery) (RemoteRefund, error) {
		mu.Lock()
		defer mu.Unlock()
		return remoteRefund("R1", 300, status), nil
	}
	setStatus := func(s string) { mu.Lock(); status = s; mu.Unlock() }
	f.refund(t, refundIn("R1", 300))
	// PROCESSING: 5s, then the backoff (15s, 15s, 30s, ...).
	var at []time.Duration
	for range 20 {
		f.clock.advance(5 * time.Second)
		before := f.refundQueryCount()
		reconcile(t, f)
		if f.refundQueryCount() > before {
			at = append(at, f.clock.Now().Sub(t0))
		}
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 20 * time.Second, 35 * time.Second, 65 * time.Second}, at); diff != "" {
		t.Fatalf("queries (-want +got):\n%s", diff)
	}
	// ABNORMAL: hourly.
	setStatus("ABNORMAL")
	f.clock.advance(3 * time.Minute)
	mark := f.lastSeq()
	reconcile(t, f)
	r := f.storedRefund(t, "R1")
	if r.State != RefundAbnormal || !r.NextCheckTime.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("abnormal: %+v", r)
	}
	n := f.refundQueryCount()
	f.clock.advance(59 * time.Minute)
	reconcile(t, f)
	if f.refundQueryCount() != n {
		t.Fatal("an abnormal refund was queried within the hour")
	}
	f.clock.advance(time.Minute)
	reconcile(t, f)
	if f.refundQueryCount() != n+1 || f.storedRefund(t, "R1").State != RefundAbnormal {
		t.Fatal("an abnormal refund was not queried after the hour")
	}
	// A person resolves it; WeChat then reports the outcome.
	setStatus("SUCCESS")
	f.clock.advance(time.Hour)
	reconcile(t, f)
	if r := f.storedRefund(t, "R1"); r.State != RefundSucceeded || !r.NextCheckTime.IsZero() || f.refundedTotal(t) != 300 {
		t.Fatalf("resolved: %+v, refunded_total %d", r, f.refundedTotal(t))
	}
	if diff := cmp.Diff([]EventType{EventRefundAbnormal, EventRefundSucceeded}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("events (-want +got):\n%s\n%+v", diff, f.store.view().anomalies)
	}
}

// TestReconcileRefundsBacksOffAFailingStore: a store that fails ends the
// pass with ErrStoreFailing, and nothing is sent that could not be
// recorded.
func TestReconcileRefundsBacksOffAFailingStore(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	f.wc.refund = func(RefundRequest) (RemoteRefund, error) {
		return RemoteRefund{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
	}
	f.refund(t, refundIn("R1", 300))
	f.wc.refund = nil
	f.clock.advance(5 * time.Second)
	f.store.mu.Lock()
	f.store.failWrites = errors.New("disk I/O error")
	f.store.mu.Unlock()
	_, err := f.svc.Reconcile(context.Background())
	if !errors.Is(err, ErrStoreFailing) {
		t.Fatalf("err = %v, want ErrStoreFailing", err)
	}
	if n := len(f.refundSends()); n != 1 {
		t.Fatalf("%d sends: a resend went out that could not be recorded", n)
	}
}

// TestRefundSpacingHoldsForResends: a resend of one refund (NOT_ENOUGH)
// is a send too: the next refund of the charge waits a minute after it.
func TestRefundSpacingHoldsForResends(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	log := &sendLog{clock: f.clock}
	f.wc.refund = func(req RefundRequest) (RemoteRefund, error) {
		log.record(req.OutRefundNo)
		if req.OutRefundNo == "R1" && len(log.get()["R1"]) == 1 {
			return RemoteRefund{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
		}
		return acceptedRefund(req), nil
	}
	f.refund(t, refundIn("R1", 100)) // refused, resent at 5s
	f.clock.advance(2 * time.Second)
	if r := f.refund(t, refundIn("R2", 100)); r.State != RefundPending || !r.NextCheckTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("R2: %+v", r)
	}
	for range 80 {
		f.clock.advance(time.Second)
		reconcile(t, f)
	}
	want := map[string][]time.Duration{"R1": {0, 5 * time.Second}, "R2": {65 * time.Second}}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Fatalf("sends (-want +got):\n%s", diff)
	}
}
