package tests

import (
	"bufio"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// readmeMetrics parses the README's "## Metrics" table: each row's metric
// names (backticked in the first column) and label names (backticked in
// the second, outside parentheses, which hold label values and notes).
func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	backticked := regexp.MustCompile("`([^`]+)`")
	parenthesized := regexp.MustCompile(`\([^()]*\)`)
	want := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Metrics"
			continue
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) != 2 {
			t.Fatalf("README metrics row %q: want 2 columns", line)
		}
		var labels []string
		for _, m := range backticked.FindAllStringSubmatch(parenthesized.ReplaceAllString(cols[1], ""), -1) {
			labels = append(labels, m[1])
		}
		slices.Sort(labels)
		for _, m := range backticked.FindAllStringSubmatch(cols[0], -1) {
			if _, dup := want[m[1]]; dup {
				t.Errorf("README names %s twice", m[1])
			}
			want[m[1]] = labels
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("no metrics table in the README's ## Metrics section")
	}
	return want
}

// TestMetricsMatchREADME checks that every papayd_ metric family papayd
// exports has exactly the labels the README's table names, and that every
// metric the README names is exported (after traffic of each kind).
func TestMetricsMatchREADME(t *testing.T) {
	t.Parallel()
	want := readmeMetrics(t)
	p := startWith(t, "", map[string]string{"PAPAYD_RECONCILE_INTERVAL": "50ms"})
	// A webhook endpoint: papayd_webhook_oldest_pending_seconds has a
	// series per endpoint.
	hook := newReceiver(t, func(int) int { return http.StatusOK })
	if st := p.do(http.MethodPost, "/v1/webhook-endpoints", map[string]any{"url": hook.URL}, nil); st != http.StatusOK {
		t.Fatalf("POST /v1/webhook-endpoints: HTTP %d", st)
	}
	a := signed(t, p, "oReadme")
	createCharge(t, p, chargeReq("README-1", a.GetContractId(), 100))

	var got map[string][]string
	eventually(t, "every metric the README names", func() bool {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(p.scrape()))
		if err != nil {
			t.Fatal(err)
		}
		got = map[string][]string{}
		for name, mf := range mfs {
			if !strings.HasPrefix(name, "papayd_") {
				continue
			}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName())
				}
				slices.Sort(labels)
				if prev, seen := got[name]; seen && !slices.Equal(prev, labels) {
					t.Errorf("%s: series with labels %v and %v", name, prev, labels)
				}
				got[name] = labels
			}
		}
		for name := range want {
			if _, ok := got[name]; !ok {
				t.Logf("not exported yet: %s", name)
				return false
			}
		}
		return true
	})
	for _, name := range slices.Sorted(maps.Keys(got)) {
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s%v is exported but not in the README's metrics table", name, got[name])
		case !slices.Equal(w, got[name]):
			t.Errorf("%s: exported labels %v, the README names %v", name, got[name], w)
		}
	}
}
