package app

import (
	"context"

	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/web"
	"github.com/papayd/papayd/internal/webhook"
)

// encodeEvent is the webhook engine's Encoder: the JSON GET
// /v1/events/{id} answers, byte for byte.
func encodeEvent(e service.Event) ([]byte, error) {
	return web.MarshalJSON(rpc.EventResponse(e))
}

// webhookStore is the store as the webhook engine sees it: each delivery
// the engine records is counted by outcome once its transaction commits.
type webhookStore struct {
	store
	outcome func(string)
}

var _ webhook.Store = webhookStore{}

func (s webhookStore) InTx(ctx context.Context, fn func(service.Tx) error) error {
	var outcomes []string
	err := s.store.InTx(ctx, func(tx service.Tx) error {
		outcomes = outcomes[:0] // a retried transaction starts over
		return fn(outcomeTx{tx, &outcomes})
	})
	if err == nil {
		for _, o := range outcomes {
			s.outcome(o)
		}
	}
	return err
}

// outcomeTx notes the outcome of each delivery the engine updates.
type outcomeTx struct {
	service.Tx
	outcomes *[]string
}

func (t outcomeTx) UpdateWebhookDelivery(ctx context.Context, d service.WebhookDelivery) error {
	if err := t.Tx.UpdateWebhookDelivery(ctx, d); err != nil {
		return err
	}
	o := "retry"
	switch d.State {
	case service.WebhookDeliveryDelivered:
		o = "delivered"
	case service.WebhookDeliveryFailed:
		o = "failed"
	}
	*t.outcomes = append(*t.outcomes, o)
	return nil
}

// runWebhooks runs the webhook engine until ctx ends, woken as soon as a
// commit appends events (the engine also looks every second).
func (a *App) runWebhooks(ctx context.Context) {
	a.background.Go(func() {
		if err := a.webhooks.Run(ctx); err != nil {
			a.log.Error("webhook engine stopped", "error", err.Error())
		}
	})
	a.background.Go(func() {
		committed := a.store.EventsCommitted()
		for {
			select {
			case <-ctx.Done():
				return
			case <-committed:
			}
			committed = a.store.EventsCommitted()
			a.webhooks.Notify()
		}
	})
}
