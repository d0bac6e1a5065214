// Package hostile replays, against papayd running as its own process, the
// probes of a hostile review: cross-site and rebinding requests, oversized
// and slow bodies, malformed gRPC, log floods, forged callbacks that try to
// blind the certificate refresh, refresh fan-out, absurd amounts, a full
// disk, and the mix-ups of sandbox and live mode. Every loop is bounded and
// every target is on 127.0.0.1.
package hostile

import (
	"fmt"
	"os"
	"testing"
)

// probe is one hostile attempt. accepted is true when papayd let it have
// its effect (a charge made, a body read whole, a connection held, ...).
type probe struct {
	name string
	run  func(t *testing.T, p *papayd) (accepted bool, detail string)
}

// TestHostile runs every probe and prints
// "hostile: N probes, A accepted, C crashes, peak RSS X MiB, log bytes Y".
// PAPAYD_HOSTILE_REPORT names a file that receives the line.
func TestHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("the hostile suite starts papayd several times; run without -short")
	}
	p := start(t, map[string]string{
		"PAPAYD_NOTIFY_ADDR":        freePort(t),
		"PAPAYD_ADMIN_ADDR":         freePort(t),
		"PAPAYD_HTTP_READ_TIMEOUT":  "2s",
		"PAPAYD_LOG_LEVEL":          "info",
		"PAPAYD_SANDBOX_TIME_SCALE": "0.001",
		// Tight query limits, so the fan-out probe's bound does not depend on
		// how fast this machine answers 300 requests.
		"PAPAYD_WECHATPAY_QUERY_RATE":  "10",
		"PAPAYD_WECHATPAY_QUERY_BURST": "5",
	})
	var n, accepted, crashes int
	var peak, logBytes int64
	record := func(name string, ok bool, detail string, proc *papayd) {
		n++
		if ok {
			accepted++
			t.Errorf("probe %s was accepted: %s", name, detail)
		} else {
			t.Logf("probe %s refused: %s", name, detail)
		}
		if proc != nil && !proc.alive() {
			crashes++
			t.Errorf("papayd died during probe %s", name)
		}
	}
	for _, pr := range serverProbes {
		ok, detail := pr.run(t, p)
		record(pr.name, ok, detail, p)
	}
	peak, logBytes = p.peakRSS(), p.logBytes()
	for _, pr := range processProbes {
		ok, detail := pr.run(t, nil)
		record(pr.name, ok, detail, nil)
	}
	line := fmt.Sprintf("hostile: %d probes, %d accepted, %d crashes, peak RSS %d MiB, log bytes %d",
		n, accepted, crashes, peak>>20, logBytes)
	fmt.Println(line)
	t.Log(line)
	if report := os.Getenv("PAPAYD_HOSTILE_REPORT"); report != "" {
		if err := os.WriteFile(report, []byte(line+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	if peak > 300<<20 {
		t.Errorf("peak RSS %d MiB", peak>>20)
	}
}
