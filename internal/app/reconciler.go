package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/papayd/papayd/internal/metrics"
	"github.com/papayd/papayd/internal/service"
)

// runReconciler runs a reconciliation pass now (resuming whatever a crash
// left unresolved) and then every interval, until ctx ends.
func runReconciler(ctx context.Context, svc *service.Service, m *metrics.Metrics, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r, err := svc.Reconcile(ctx)
		if ctx.Err() != nil {
			return
		}
		m.Reconciled(r)
		if err != nil {
			log.Warn("reconciler pass incomplete", "intents", r.Intents, "charges", r.Charges,
				"agreements", r.Agreements, "closed", r.Closed, "errors", r.Errors, "error", err.Error())
		} else if r != (service.ReconcileReport{}) {
			log.Info("reconciler pass", "intents", r.Intents, "charges", r.Charges,
				"agreements", r.Agreements, "closed", r.Closed)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
