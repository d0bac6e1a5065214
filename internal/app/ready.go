package app

import (
	"context"
	"fmt"

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
type storeReadiness struct {
	store interface {
		InTx(ctx context.Context, fn func(service.Tx) error) error
	}
	clock systemClock
}

var _ web.Readier = storeReadiness{}

// Ready returns nil once the probe's transaction has committed.
func (s storeReadiness) Ready(ctx context.Context) error {
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
