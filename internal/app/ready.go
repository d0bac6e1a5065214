package app

import (
	"context"
	"fmt"
	"time"

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/web"
)

// readyProbe is the intent kind of the readiness probe's write; no intent
// of this kind ever commits.
const readyProbe service.IntentKind = "READYZ_PROBE"

// storeReadiness is /readyz's check: one write transaction that must
// commit. It records an intent and resolves it in the same transaction,
// so nothing is left behind but a real change all the same (the intents'
// AUTOINCREMENT counter advances), which a full disk or a read-only file
// fails at commit; BEGIN IMMEDIATE and ROLLBACK alone would not.
//
// A commit that failed in the last readyFailureWindow fails it too: the
// probe's write is small, and may still fit where real transactions no
// longer do (a nearly full disk).
type storeReadiness struct {
	store interface {
		InTx(ctx context.Context, fn func(service.Tx) error) error
	}
	// failures is the SQLite store's record of failed commits; nil on
	// PostgreSQL, whose probe write fails as soon as the database does.
	failures interface {
		LastCommitFailure() (time.Time, error)
	}
	clock systemClock
}

// newStoreReadiness is the readiness check of s.
func newStoreReadiness(s store) storeReadiness {
	r := storeReadiness{store: s}
	if f, ok := s.(interface{ LastCommitFailure() (time.Time, error) }); ok {
		r.failures = f
	}
	return r
}

// readyFailureWindow is how long a failed commit keeps papayd not ready.
const readyFailureWindow = 10 * time.Second

var _ web.Readier = storeReadiness{}

// Ready returns nil once the probe's transaction has committed and no
// commit failed in the last readyFailureWindow.
func (s storeReadiness) Ready(ctx context.Context) error {
	if s.failures != nil {
		if at, cause := s.failures.LastCommitFailure(); !at.IsZero() && s.clock.Now().Sub(at) < readyFailureWindow {
			return fmt.Errorf("a write transaction failed to commit %s ago: %w", s.clock.Now().Sub(at).Round(time.Millisecond), cause)
		}
	}
	err := s.store.InTx(ctx, func(tx service.Tx) error {
		id, err := tx.CreateIntent(ctx, service.Intent{Kind: readyProbe, Key: "readyz", Note: "readiness probe", CreateTime: s.clock.Now()})
		if err != nil {
			return err
		}
		return tx.DeleteIntent(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("readiness write: %w", err)
	}
	return nil
}
