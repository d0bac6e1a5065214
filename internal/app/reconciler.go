package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/papayd/papayd/internal/metrics"
	"github.com/papayd/papayd/internal/service"
)

// reconcilerCaller is papayd's own reconciler in the audit trail.
var reconcilerCaller = service.Caller{Name: "papayd reconciler", Peer: "local"}

// maxStoreBackoff bounds the reconciler's wait while the store fails.
const maxStoreBackoff = time.Minute

// runReconciler runs a reconciliation pass now (resuming whatever a crash
// left unresolved) and then every interval, until ctx ends. While passes
// end on a failing store (a full disk), it waits twice as long after each,
// up to maxStoreBackoff, instead of querying WeChat every interval about
// answers it cannot record.
func runReconciler(ctx context.Context, svc *service.Service, m *metrics.Metrics, interval time.Duration, log *slog.Logger) {
	ctx = service.WithCaller(ctx, reconcilerCaller) // what it does is audited under this name
	failures := 0
	for {
		r, err := svc.Reconcile(ctx)
		if ctx.Err() != nil {
			return
		}
		m.Reconciled(r)
		switch {
		case errors.Is(err, service.ErrStoreFailing):
			failures++
			log.Error("reconciler pass stopped: the store is failing", "backoff", storeBackoff(interval, failures).String(),
				"error", err.Error())
		case err != nil:
			failures = 0
			log.Warn("reconciler pass incomplete", "intents", r.Intents, "charges", r.Charges, "refunds", r.Refunds,
				"agreements", r.Agreements, "closed", r.Closed, "errors", r.Errors, "error", err.Error())
		default:
			failures = 0
			if r != (service.ReconcileReport{}) {
				log.Info("reconciler pass", "intents", r.Intents, "charges", r.Charges, "refunds", r.Refunds,
					"agreements", r.Agreements, "closed", r.Closed, "rechecked", r.Rechecked)
			}
		}
		t := time.NewTimer(storeBackoff(interval, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// storeBackoff is the wait before the next pass after failures passes in a
// row ended on a failing store: interval, doubled per failure, at most
// maxStoreBackoff (but never below interval).
func storeBackoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for range min(failures, 30) {
		if d >= maxStoreBackoff {
			return max(maxStoreBackoff, interval)
		}
		d *= 2
	}
	return max(min(d, maxStoreBackoff), interval)
}
