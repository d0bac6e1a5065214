package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// TestWeChatCallLabels checks the endpoint label of every call the client
// in internal/wechat makes, with the paths it builds (contract.go,
// transaction.go, certs.go), and the code label of a successful call.
func TestWeChatCallLabels(t *testing.T) {
	t.Parallel()
	const c, tx = "/v3/global/papay/contracts", "/v3/global/papay/transactions"
	for _, tc := range []struct{ method, path, want string }{
		{"POST", c + "/miniprogram-pre-entrust-sign", "POST " + c + "/miniprogram-pre-entrust-sign"},
		{"POST", c + "/app-pre-entrust-sign", "POST " + c + "/app-pre-entrust-sign"},
		{"POST", c + "/h5-pre-entrust-sign", "POST " + c + "/h5-pre-entrust-sign"},
		{"POST", c + "/jsapi-pre-entrust-sign", "POST " + c + "/jsapi-pre-entrust-sign"},
		{"POST", c + "/web-pre-entrust-sign", "POST " + c + "/web-pre-entrust-sign"},
		{"GET", c + "/Wx123", "GET " + c + "/{contract_id}"},
		{"GET", c + "/out-contract-code/PA1", "GET " + c + "/out-contract-code/{out_contract_code}"},
		{"POST", c + "/Wx123/terminate", "POST " + c + "/{contract_id}/terminate"},
		{"POST", tx, "POST " + tx},
		{"GET", tx + "/4200001", "GET " + tx + "/{transaction_id}"},
		{"GET", tx + "/out-trade-no/T1", "GET " + tx + "/out-trade-no/{out_trade_no}"},
		{"POST", tx + "/out-trade-no/T1/reverse", "POST " + tx + "/out-trade-no/{out_trade_no}/reverse"},
		{"GET", "/v3/global/certificates", "GET /v3/global/certificates"},
		{"POST", "/v3/global/refunds", "POST /v3/global/refunds"},
		{"GET", "/v3/global/refunds/out-refund-no/R1", "GET /v3/global/refunds/out-refund-no/{out_refund_no}"},
		{"GET", "/v3/global/refunds/id/5030001", "GET /v3/global/refunds/id/{refund_id}"},
		{"GET", "/v3/refund/domestic/refunds/123", "GET other"},
	} {
		m := New()
		m.WeChatCall(service.WeChatCall{Method: tc.method, Path: tc.path, HTTPStatus: http.StatusOK, Duration: time.Millisecond})
		if got := labelsOf(t, m.reg, "papayd_wechatpay_calls_total"); got != "code=OK,endpoint="+tc.want+",outcome=ok" {
			t.Errorf("%s %s: papayd_wechatpay_calls_total{%s}, want endpoint %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestWeChatCallCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		code   string
		want   string
	}{
		{http.StatusOK, "", "code=OK,endpoint=POST /v3/global/papay/transactions,outcome=ok"},
		{http.StatusNoContent, "", "code=OK,endpoint=POST /v3/global/papay/transactions,outcome=ok"},
		{http.StatusForbidden, "NO_AUTH", "code=NO_AUTH,endpoint=POST /v3/global/papay/transactions,outcome=refused"},
		{http.StatusBadGateway, "", "code=NONE,endpoint=POST /v3/global/papay/transactions,outcome=error"},
		{0, "", "code=NONE,endpoint=POST /v3/global/papay/transactions,outcome=no_answer"},
	} {
		m := New()
		m.WeChatCall(service.WeChatCall{Method: "POST", Path: "/v3/global/papay/transactions", HTTPStatus: tc.status, Code: tc.code})
		if got := labelsOf(t, m.reg, "papayd_wechatpay_calls_total"); got != tc.want {
			t.Errorf("HTTP %d %q: {%s}, want {%s}", tc.status, tc.code, got, tc.want)
		}
	}
}

// labelsOf returns the labels of the one series of family name in reg, as
// "k=v,k=v".
func labelsOf(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%s: %d series, want 1", name, len(mf.GetMetric()))
		}
		var kv []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			kv = append(kv, l.GetName()+"="+l.GetValue())
		}
		return strings.Join(kv, ",")
	}
	t.Fatalf("no %s", name)
	return ""
}

type stats db.Stats

func (s stats) Stats(context.Context) (db.Stats, error) { return db.Stats(s), nil }

// TestRecordsEveryState checks that every state is exported, 0 when no
// record is in it.
func TestRecordsEveryState(t *testing.T) {
	t.Parallel()
	src := stats{Charges: map[string]int64{"SUCCEEDED": 2}, Agreements: map[string]int64{"SIGNED": 1}, Refunds: map[string]int64{"SUCCEEDED": 3}}
	c := NewRecordsCollector(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(kv, ","), m.GetGauge().GetValue()))
		}
	}
	want := []string{
		"papayd_agreements{state=EXPIRED} 0",
		"papayd_agreements{state=PENDING} 0",
		"papayd_agreements{state=SIGNED} 1",
		"papayd_agreements{state=TERMINATED} 0",
		"papayd_anomalies{} 0",
		"papayd_charges{state=CLOSED} 0",
		"papayd_charges{state=CLOSING} 0",
		"papayd_charges{state=FAILED} 0",
		"papayd_charges{state=PENDING} 0",
		"papayd_charges{state=PROCESSING} 0",
		"papayd_charges{state=SUCCEEDED} 2",
		"papayd_open_intents{} 0",
		"papayd_refunds{state=ABNORMAL} 0",
		"papayd_refunds{state=CLOSED} 0",
		"papayd_refunds{state=FAILED} 0",
		"papayd_refunds{state=PENDING} 0",
		"papayd_refunds{state=PROCESSING} 0",
		"papayd_refunds{state=SUCCEEDED} 3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
