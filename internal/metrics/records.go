package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/papayd/papayd/internal/db"
)

// StatsSource counts records by state (internal/db implements it).
type StatsSource interface {
	Stats(ctx context.Context) (db.Stats, error)
}

// records is a collector of record counts, read from the store at most
// every maxAge, so frequent scrapes do not scan a large database.
type records struct {
	src    StatsSource
	log    *slog.Logger
	maxAge time.Duration

	mu    sync.Mutex
	at    time.Time
	stats db.Stats

	charges, agreements, anomalies, intents *prometheus.Desc
}

// NewRecordsCollector returns the collector of papayd_charges{state},
// papayd_agreements{state}, papayd_anomalies and papayd_open_intents.
func NewRecordsCollector(src StatsSource, log *slog.Logger) prometheus.Collector {
	return &records{
		src: src, log: log, maxAge: 10 * time.Second,
		charges:    prometheus.NewDesc("papayd_charges", "Charges recorded, by state.", []string{"state"}, nil),
		agreements: prometheus.NewDesc("papayd_agreements", "Agreements recorded, by state.", []string{"state"}, nil),
		anomalies:  prometheus.NewDesc("papayd_anomalies", "Anomalies recorded: WeChat disagreed with a charge on money or contract.", nil, nil),
		intents:    prometheus.NewDesc("papayd_open_intents", "WeChat calls recorded as intents and not yet resolved.", nil, nil),
	}
}

func (r *records) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.charges
	ch <- r.agreements
	ch <- r.anomalies
	ch <- r.intents
}

func (r *records) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	if time.Since(r.at) > r.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := r.src.Stats(ctx)
		cancel()
		if err != nil {
			r.log.Error("metrics: reading record counts", "error", err.Error())
		} else {
			r.stats, r.at = s, time.Now()
		}
	}
	s := r.stats
	r.mu.Unlock()
	for state, n := range s.Charges {
		ch <- prometheus.MustNewConstMetric(r.charges, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range s.Agreements {
		ch <- prometheus.MustNewConstMetric(r.agreements, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(r.anomalies, prometheus.GaugeValue, float64(s.Anomalies))
	ch <- prometheus.MustNewConstMetric(r.intents, prometheus.GaugeValue, float64(s.Intents))
}
