package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// chargeStates, agreementStates and service.RefundStates are exported even when no record is in
// them (as 0), so a state's series never disappears and reappears.
var (
	chargeStates = []service.ChargeState{
		service.ChargePending, service.ChargeProcessing, service.ChargeClosing,
		service.ChargeSucceeded, service.ChargeFailed, service.ChargeClosed,
	}
	agreementStates = []service.AgreementState{
		service.AgreementPending, service.AgreementSigned, service.AgreementTerminated, service.AgreementExpired,
	}
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

	charges, agreements, refunds, anomalies, intents *prometheus.Desc
}

// NewRecordsCollector returns the collector of papayd_charges{state},
// papayd_agreements{state}, papayd_refunds{state}, papayd_anomalies and
// papayd_open_intents.
func NewRecordsCollector(src StatsSource, log *slog.Logger) prometheus.Collector {
	return &records{
		src: src, log: log, maxAge: 10 * time.Second,
		charges:    prometheus.NewDesc("papayd_charges", "Charges recorded, by state.", []string{"state"}, nil),
		agreements: prometheus.NewDesc("papayd_agreements", "Agreements recorded, by state.", []string{"state"}, nil),
		refunds:    prometheus.NewDesc("papayd_refunds", "Refunds recorded, by state (ABNORMAL: money stuck until a person acts in the merchant platform).", []string{"state"}, nil),
		anomalies:  prometheus.NewDesc("papayd_anomalies", "Anomalies recorded: WeChat disagreed with a charge on money or contract.", nil, nil),
		intents:    prometheus.NewDesc("papayd_open_intents", "WeChat calls recorded as intents and not yet resolved.", nil, nil),
	}
}

func (r *records) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.charges
	ch <- r.agreements
	ch <- r.refunds
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
	for state, n := range withStates(s.Charges, chargeStates) {
		ch <- prometheus.MustNewConstMetric(r.charges, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range withStates(s.Agreements, agreementStates) {
		ch <- prometheus.MustNewConstMetric(r.agreements, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range withStates(s.Refunds, service.RefundStates) {
		ch <- prometheus.MustNewConstMetric(r.refunds, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(r.anomalies, prometheus.GaugeValue, float64(s.Anomalies))
	ch <- prometheus.MustNewConstMetric(r.intents, prometheus.GaugeValue, float64(s.Intents))
}

// withStates returns counts with every state of known, 0 when counts has
// none; a state counts has beyond known is kept.
func withStates[S ~string](counts map[string]int64, known []S) map[string]int64 {
	all := make(map[string]int64, len(known)+len(counts))
	for _, st := range known {
		all[string(st)] = 0
	}
	for st, n := range counts {
		all[st] = n
	}
	return all
}
