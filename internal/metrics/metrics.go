package metrics

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
)

// Metrics holds papayd's collectors in their own registry.
type Metrics struct {
	reg *prometheus.Registry

	rpcRequests   *prometheus.CounterVec
	rpcDuration   *prometheus.HistogramVec
	wechatCalls   *prometheus.CounterVec
	wechatLatency *prometheus.HistogramVec
	notifications *prometheus.CounterVec
	notifyLatency prometheus.Histogram
	reconcile     *prometheus.CounterVec
	backlog       *prometheus.GaugeVec
	commitSize    prometheus.Histogram
	commitLatency prometheus.Histogram
	authFailures  *prometheus.CounterVec
	events        *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
}

// New returns the metrics, registered with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_rpc_requests_total", Help: "RPCs handled, by full method and gRPC code (REST calls arrive as RPCs too).",
		}, []string{"method", "code"}),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "papayd_rpc_duration_seconds", Help: "RPC handling time, by full method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		wechatCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_wechatpay_calls_total", Help: "Calls (attempts) to WeChat Pay, by endpoint, outcome (ok, refused, error, no_answer) and WeChat code (OK when answered 2xx, NONE for a failure without a code).",
		}, []string{"endpoint", "outcome", "code"}),
		wechatLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "papayd_wechatpay_call_duration_seconds", Help: "Duration of calls (attempts) to WeChat Pay, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"endpoint"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_notifications_total", Help: "WeChat Pay notifications received, by event type and outcome (applied, noop, duplicate, unmatched, unhandled, anomaly, rejected_unauthentic, rejected_malformed, rejected_too_large, storage_error).",
		}, []string{"event_type", "outcome"}),
		notifyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "papayd_notification_duration_seconds", Help: "Time from reading a notification to answering it (verify, decrypt, commit).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "papayd_db_commit_transactions", Help: "Write transactions per group commit (one fsync each).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "papayd_db_commit_duration_seconds", Help: "Duration of a group commit, from BEGIN to the end of COMMIT (fsync included).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_reconciler_actions_total", Help: "What the reconciler did, by action (intent_resumed, charge_queried, agreement_queried, charge_closed, final_rechecked, error).",
		}, []string{"action"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "papayd_reconciler_backlog", Help: "Records the last reconciler pass found due, by kind (intents, charges, agreements, refunds); a full batch means more are waiting.",
		}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_auth_failures_total", Help: "Calls refused by API key authentication, by reason (missing, malformed, rejected, unusable, error, scope, rate_limited).",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_events_appended_total", Help: "Events committed to the outbox, by type.",
		}, []string{"type"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "papayd_webhook_deliveries_total", Help: "Webhook delivery attempts recorded, by outcome (delivered, retry, failed).",
		}, []string{"outcome"}),
	}
	for _, o := range WebhookOutcomes {
		m.webhooks.WithLabelValues(o)
	}
	for _, t := range service.EventTypes {
		m.events.WithLabelValues(string(t))
	}
	for _, r := range rpc.AuthReasons {
		m.authFailures.WithLabelValues(r)
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rpcRequests, m.rpcDuration, m.wechatCalls, m.wechatLatency, m.notifications, m.notifyLatency, m.reconcile, m.backlog,
		m.commitSize, m.commitLatency, m.authFailures, m.events, m.webhooks)
	return m
}

// Commit records one group commit of the store's writer.
func (m *Metrics) Commit(transactions int, took time.Duration) {
	m.commitSize.Observe(float64(transactions))
	m.commitLatency.Observe(took.Seconds())
}

// Events counts the events one commit appended (the store's ObserveEvents).
func (m *Metrics) Events(types []service.EventType) {
	for _, t := range types {
		m.events.WithLabelValues(string(t)).Inc()
	}
}

// StreamSubscribers exports papayd_event_stream_subscribers from read,
// called on every scrape.
func (m *Metrics) StreamSubscribers(read func() int64) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "papayd_event_stream_subscribers", Help: "Open StreamEvents calls.",
	}, func() float64 { return float64(read()) }))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Register adds a collector (e.g. records by state) to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// UnaryInterceptor counts RPCs by method and code and times them. Put it
// outside the error-mapping interceptor so it sees the final code.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.rpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
		m.rpcRequests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return resp, err
	}
}

// AuthFailure counts one call refused by authentication (rpc.Auth.Failed).
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// Notification counts one notification's outcome and handling time.
func (m *Metrics) Notification(eventType, outcome string, took time.Duration) {
	if eventType == "" {
		eventType = "unknown"
	}
	m.notifications.WithLabelValues(eventType, outcome).Inc()
	m.notifyLatency.Observe(took.Seconds())
}

// WeChatCall counts one call (attempt) to WeChat Pay.
func (m *Metrics) WeChatCall(c service.WeChatCall) {
	ep := c.Method + " " + endpointOf(c.Path)
	outcome := "ok"
	switch {
	case c.HTTPStatus == 0:
		outcome = "no_answer"
	case c.HTTPStatus >= 500 || c.HTTPStatus == 429:
		outcome = "error"
	case c.HTTPStatus >= 300:
		outcome = "refused"
	}
	m.wechatCalls.WithLabelValues(ep, outcome, codeOf(outcome, c.Code)).Inc()
	m.wechatLatency.WithLabelValues(ep).Observe(c.Duration.Seconds())
}

// Reconciled records one reconciler pass.
func (m *Metrics) Reconciled(r service.ReconcileReport) {
	m.backlog.WithLabelValues("intents").Set(float64(r.Intents))
	m.backlog.WithLabelValues("charges").Set(float64(r.Charges))
	m.backlog.WithLabelValues("agreements").Set(float64(r.Agreements))
	m.backlog.WithLabelValues("refunds").Set(float64(r.Refunds))
	m.reconcile.WithLabelValues("intent_resumed").Add(float64(r.Intents))
	m.reconcile.WithLabelValues("charge_queried").Add(float64(r.Charges))
	m.reconcile.WithLabelValues("agreement_queried").Add(float64(r.Agreements))
	m.reconcile.WithLabelValues("refund_checked").Add(float64(r.Refunds))
	m.reconcile.WithLabelValues("charge_closed").Add(float64(r.Closed))
	m.reconcile.WithLabelValues("final_rechecked").Add(float64(r.Rechecked))
	m.reconcile.WithLabelValues("error").Add(float64(r.Errors))
}

// codeOf is the code label of a call: WeChat's error code, else OK for a
// successful call and NONE for a failed one (no answer, or an error answer
// without a code).
func codeOf(outcome, code string) string {
	switch {
	case code != "":
		return code
	case outcome == "ok":
		return "OK"
	}
	return "NONE"
}

// endpoints maps WeChat paths to templates, so ids never become labels.
var endpoints = []struct {
	re   *regexp.Regexp
	name string
}{
	{regexp.MustCompile(`^/v3/global/papay/contracts/[a-z0-9]+-pre-entrust-sign$`), ""},
	{regexp.MustCompile(`^/v3/global/papay/contracts/out-contract-code/[^/]+$`), "/v3/global/papay/contracts/out-contract-code/{out_contract_code}"},
	{regexp.MustCompile(`^/v3/global/papay/contracts/[^/]+/terminate$`), "/v3/global/papay/contracts/{contract_id}/terminate"},
	{regexp.MustCompile(`^/v3/global/papay/contracts/[^/]+$`), "/v3/global/papay/contracts/{contract_id}"},
	{regexp.MustCompile(`^/v3/global/papay/transactions$`), ""},
	{regexp.MustCompile(`^/v3/global/papay/transactions/out-trade-no/[^/]+/reverse$`), "/v3/global/papay/transactions/out-trade-no/{out_trade_no}/reverse"},
	{regexp.MustCompile(`^/v3/global/papay/transactions/out-trade-no/[^/]+$`), "/v3/global/papay/transactions/out-trade-no/{out_trade_no}"},
	{regexp.MustCompile(`^/v3/global/papay/transactions/[^/]+$`), "/v3/global/papay/transactions/{transaction_id}"},
	{regexp.MustCompile(`^/v3/global/refunds$`), ""},
	{regexp.MustCompile(`^/v3/global/refunds/out-refund-no/[^/]+$`), "/v3/global/refunds/out-refund-no/{out_refund_no}"},
	{regexp.MustCompile(`^/v3/global/refunds/id/[^/]+$`), "/v3/global/refunds/id/{refund_id}"},
	{regexp.MustCompile(`^/v3/global/certificates$`), ""},
}

func endpointOf(path string) string {
	for _, e := range endpoints {
		if e.re.MatchString(path) {
			if e.name == "" {
				return path
			}
			return e.name
		}
	}
	return "other"
}

// RecordCache exports papayd_record_cache_lookups_total{kind,result} from
// read (the store's CacheStats), which is called on every scrape.
func (m *Metrics) RecordCache(read func() db.CacheStats) error {
	for _, c := range []struct {
		kind, result string
		value        func(db.CacheStats) uint64
	}{
		{"agreement", "hit", func(s db.CacheStats) uint64 { return s.AgreementHits }},
		{"agreement", "miss", func(s db.CacheStats) uint64 { return s.AgreementMisses }},
		{"charge", "hit", func(s db.CacheStats) uint64 { return s.ChargeHits }},
		{"charge", "miss", func(s db.CacheStats) uint64 { return s.ChargeMisses }},
	} {
		err := m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "papayd_record_cache_lookups_total",
			Help:        "Single-record reads outside a transaction, by kind and whether the record cache answered (hit) or the database (miss).",
			ConstLabels: prometheus.Labels{"kind": c.kind, "result": c.result},
		}, func() float64 { return float64(c.value(read())) }))
		if err != nil {
			return err
		}
	}
	return nil
}
