package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/papayd/papayd/internal/service"
)

// WebhookOutcomes are the outcomes of a webhook delivery attempt:
// delivered (2xx), retry (another attempt is scheduled), failed (none is).
var WebhookOutcomes = []string{"delivered", "retry", "failed"}

// WebhookDelivery counts one recorded attempt of a webhook delivery by
// outcome (one of WebhookOutcomes).
func (m *Metrics) WebhookDelivery(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// WebhookBacklog exports papayd_webhook_oldest_pending_seconds{endpoint_id}:
// the age of each enabled endpoint's oldest PENDING delivery (0 when none),
// read from r on each scrape (one indexed read per endpoint).
func (m *Metrics) WebhookBacklog(r service.WebhookReader, log *slog.Logger) error {
	return m.reg.Register(&webhookBacklog{r: r, log: log, desc: prometheus.NewDesc("papayd_webhook_oldest_pending_seconds",
		"Age of each enabled webhook endpoint's oldest undelivered (PENDING) delivery; 0 when it has none.", []string{"endpoint_id"}, nil)})
}

type webhookBacklog struct {
	r    service.WebhookReader
	log  *slog.Logger
	desc *prometheus.Desc
}

func (b *webhookBacklog) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

func (b *webhookBacklog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	eps, err := b.r.WebhookEndpoints(ctx)
	if err != nil {
		b.log.Error("metrics: reading webhook endpoints", "error", err.Error())
		return
	}
	now := time.Now()
	for _, ep := range eps {
		if ep.State != service.WebhookEndpointEnabled {
			continue
		}
		ds, err := b.r.ListWebhookDeliveries(ctx, service.WebhookDeliveryFilter{EndpointID: ep.ID,
			State: service.WebhookDeliveryPending, PageSize: 1})
		if err != nil {
			b.log.Error("metrics: reading webhook deliveries", "endpoint_id", ep.ID, "error", err.Error())
			return
		}
		age := 0.0
		if len(ds) > 0 {
			age = max(now.Sub(ds[0].CreateTime).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, age, ep.ID)
	}
}
