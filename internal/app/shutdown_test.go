package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// blockingWeChat answers QueryContract only when release is closed (a call
// stuck past its context: a WeChat call or a store write does not always
// end with it), or, when release is nil, once ctx ends. Then it records the
// call's audit row in the store, as the WeChat client does after every
// call whatever its context, reports how that went on recorded, and
// answers "unavailable". Its other methods are not called.
type blockingWeChat struct {
	service.WeChat
	store    store
	release  chan struct{}
	entered  chan struct{} // closed by the first call
	once     sync.Once
	recorded chan error // buffered: the first call's audit row
}

func (w *blockingWeChat) QueryContract(ctx context.Context, _ service.ContractQuery) (service.RemoteContract, error) {
	w.once.Do(func() { close(w.entered) })
	if w.release != nil {
		<-w.release
	} else {
		<-ctx.Done()
	}
	err := w.store.RecordWeChatCall(context.WithoutCancel(ctx),
		service.WeChatCall{Method: "GET", Path: "/v3/global/papay/contracts", Time: time.Now()}, nil)
	select {
	case w.recorded <- err:
	default:
	}
	return service.RemoteContract{}, fmt.Errorf("query contract: %w", service.ErrWeChatUnavailable)
}

// startBlockedPass starts a (sandbox mode) papayd with a shutdown timeout
// of 200ms whose reconciler is in a pass, inside a QueryContract call of w,
// when it returns. The caller cancels the returned context to stop it;
// Run's result arrives on the channel.
func startBlockedPass(t *testing.T, w *blockingWeChat) (*App, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx := t.Context()
	cfg, err := ParseConfig(nil, env(map[string]string{
		"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0", "PAPAYD_ADMIN_ADDR": "127.0.0.1:0", "PAPAYD_DATA_DIR": t.TempDir(),
		"PAPAYD_SHUTDOWN_TIMEOUT": "200ms", "PAPAYD_RECONCILE_INTERVAL": "1h",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// A pending agreement the first pass asks WeChat about, through w.
	now := time.Now()
	due := pendingAgreement("PADUE", now.Add(-time.Minute))
	due.SessionExpireTime, due.NextCheckTime = now.Add(time.Hour), now.Add(-time.Second)
	if err := a.store.InTx(ctx, func(tx service.Tx) error { return tx.CreateAgreement(ctx, due) }); err != nil {
		t.Fatal(err)
	}
	w.store, w.entered, w.recorded = a.store, make(chan struct{}), make(chan error, 1)
	a.svc = service.New(service.Config{}, a.store, w, systemClock{}, randomIDs{}, log)

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx) }()
	select {
	case <-w.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the reconciler did not call QueryContract")
	}
	return a, stop, ran
}

// waitRun waits for Run to return after its context was cancelled.
func waitRun(t *testing.T, ran <-chan error) {
	t.Helper()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestShutdownCancelsAndWaitsForPass: shutdown cancels a reconciler pass
// blocked in a WeChat call and closes the store only after the pass
// stopped using it: the audit row the call records after its cancellation
// still reaches the store.
func TestShutdownCancelsAndWaitsForPass(t *testing.T) {
	t.Parallel()
	w := &blockingWeChat{}
	a, stop, ran := startBlockedPass(t, w)
	stop()
	waitRun(t, ran)
	select {
	case err := <-w.recorded:
		if err != nil {
			t.Errorf("the cancelled call's audit row: %v", err)
		}
	default:
		t.Error("Run returned before the cancelled pass used the store")
	}
	if err := a.store.Ping(t.Context()); err == nil {
		t.Error("the store is open after Run returned")
	}
}

// TestShutdownLeavesStoreToRunningPass: a pass that outlives the shutdown
// timeout does not stop shutdown, but the store is not closed under it:
// its writes after Run returned still succeed.
func TestShutdownLeavesStoreToRunningPass(t *testing.T) {
	t.Parallel()
	w := &blockingWeChat{release: make(chan struct{})}
	a, stop, ran := startBlockedPass(t, w)
	stop()
	waitRun(t, ran)
	if err := a.store.Ping(t.Context()); err != nil {
		t.Errorf("Run closed the store while a reconciler pass still ran: %v", err)
	}
	close(w.release)
	select {
	case err := <-w.recorded:
		if err != nil {
			t.Errorf("the pass's write after Run returned: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the released call did not return")
	}
	a.background.Wait()
	a.closeAll()
}
