package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// scrape returns papayd's /metrics exposition, from the admin listener.
func (p *papayd) scrape() string {
	p.t.Helper()
	resp, err := p.http.Get("http://" + p.app.AdminAddr() + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("/metrics: HTTP %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oMetrics")
	createCharge(t, p, chargeReq("METRICS-1", a.GetContractId(), 100))
	eventually(t, "TRANSACTION.SUCCESS recorded", func() bool { return len(p.notificationsAbout("METRICS-1")) == 1 })
	h, body, err := p.app.Sandbox().BuildNotification("PAPAY.SIGN", "", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Wechatpay-Serial", "UNKNOWN")
	p.postNotification(h, body)
	// A REST call is counted as the RPC it is.
	if got := p.do(http.MethodGet, "/v1/health", nil, nil); got != http.StatusOK {
		t.Fatalf("GET /v1/health: HTTP %d", got)
	}

	eventually(t, "metrics", func() bool {
		m := p.scrape()
		for _, want := range []string{
			`papayd_rpc_requests_total{code="OK",method="/papay.v1.AgreementService/CreatePresignSession"} 1`,
			`papayd_rpc_requests_total{code="OK",method="/papay.v1.ChargeService/CreateCharge"} 1`,
			`papayd_rpc_duration_seconds_bucket{method="/papay.v1.ChargeService/CreateCharge",le="+Inf"} 1`,
			`papayd_wechatpay_calls_total{code="OK",endpoint="POST /v3/global/papay/contracts/miniprogram-pre-entrust-sign",outcome="ok"} 1`,
			`papayd_wechatpay_calls_total{code="OK",endpoint="POST /v3/global/papay/transactions",outcome="ok"} 1`,
			`papayd_wechatpay_call_duration_seconds_count{endpoint="POST /v3/global/papay/transactions"} 1`,
			`papayd_notifications_total{event_type="PAPAY.SIGN",outcome="applied"} 1`,
			`papayd_notifications_total{event_type="unknown",outcome="rejected_unauthentic"} 1`,
			`papayd_reconciler_actions_total{action="agreement_queried"}`,
			`papayd_reconciler_backlog{kind="charges"}`,
			`papayd_agreements{state="SIGNED"} 1`,
			`papayd_anomalies 0`,
			`papayd_open_intents 0`,
			`papayd_rpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"} 1`,
			`papayd_db_commit_transactions_bucket{le="1"}`,
			`papayd_db_commit_duration_seconds_count`,
			`papayd_record_cache_lookups_total{kind="charge",result="miss"}`,
			`go_goroutines`,
			`process_resident_memory_bytes`,
		} {
			if !strings.Contains(m, want) {
				t.Logf("missing %s", want)
				return false
			}
		}
		return strings.Contains(m, `papayd_notifications_total{event_type="TRANSACTION.SUCCESS",outcome=`) &&
			strings.Contains(m, `papayd_charges{state="SUCCEEDED"} 1`)
	})
}
