package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// timing is how long one phase of the run took.
type timing struct {
	Name string
	D    time.Duration
}

// machine describes where the run happened.
type machine struct {
	Cores                                     int
	CPU, Go, Kernel, Memory, Date, Commit, OS string
	Changed                                   []string // uncommitted changes that can change papayd
}

func describeMachine() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), CPU: "unknown", Memory: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			var kib int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kib); err == nil {
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(b))
	}
	if b, err := exec.Command("git", "status", "--porcelain").Output(); err == nil {
		for l := range strings.Lines(string(b)) {
			path := strings.TrimSpace(l)
			if len(path) > 3 {
				path = strings.TrimSpace(path[2:])
			}
			if path != "" && !strings.HasPrefix(path, "tests/") && !strings.HasPrefix(path, "docs/") &&
				!strings.HasPrefix(path, ".ci/") && !strings.HasSuffix(path, ".md") {
				m.Changed = append(m.Changed, path)
			}
		}
	}
	return m
}

// report is everything the run measured.
type report struct {
	opts       options
	Machine    machine
	Started    time.Time
	Total      time.Duration
	Phases     []timing
	IdleRSSKiB int64
	Callbacks  struct {
		Stream int
		Build  time.Duration
		// SDK is the baseline measured before and after papayd's load
		// (SDKBefore, SDKAfter), as one.
		SDK, Papayd         result
		SDKBefore, SDKAfter result
		Check               callbackCheck
		// Group commits papayd made during the stream, and the write
		// transactions they carried (from its /metrics).
		Commits, Transactions float64
		// The first "notification not stored" line of papayd's logs.
		StorageErr string
	}
	Charges struct {
		Agreements  int
		Setup       time.Duration
		Raw, Papayd result
		// The RSA floor, measured just before and just after papayd's
		// load, and both together.
		FloorBefore, FloorAfter, Floor result
		FloorBytes                     int // the signed message
	}
	Reads    []result // the gRPC ceiling, the REST ceiling, then the reads
	Events   eventLatency
	Webhooks webhookThroughput
	Scale    []scalePoint

	// The configurations besides SQLite (-stores, -replicas), each run as
	// a report of its own, and whether SQLite itself ran.
	Stores []*report
	// /proc/loadavg when the configuration's part of the run began and
	// ended.
	LoadStart, LoadEnd string
	sqlite             bool
	root               *report     // a configuration's report: the main one
	store              storeConfig // a configuration's report: its configuration
	pg                 *pgServer   // a PostgreSQL configuration's cluster
}

// row is one line of the summary table.
type row struct {
	Figure, Papayd, Baseline, Ratio, Target string
	Met                                     bool
}

// infoTarget is the target of a row reported as information: its met?
// says "-".
const infoTarget = "information"

// metText is a row's met? column.
func (rw row) metText() string {
	switch {
	case rw.Target == infoTarget:
		return "-"
	case rw.Met:
		return "yes"
	}
	return "NO"
}

// rssTargetMiB bounds papayd's peak RSS under every load; rssLargeTargetMiB
// under the reads of figure 4 at largeRecords records or more.
const (
	rssTargetMiB      = 150
	rssLargeTargetMiB = 200
	largeRecords      = 10_000_000
)

// chargeCPUTarget bounds papayd's CPU per CreateCharge as a multiple of
// the RSA floor's CPU per signature and verification (figure 2).
const chargeCPUTarget = 1.25

// Figure 3's targets: a read's rate as a share of its stack's ceiling.
const (
	restReadTarget = 0.75
	grpcReadTarget = 0.80
)

// callbackCPUTarget bounds papayd's CPU per notification of figure 1 as a
// multiple of the SDK's CPU per ParseNotifyRequest on the same stream.
const callbackCPUTarget = 2.5

func rate(r result) string { return fmt.Sprintf("%.0f/s", r.Rate()) }
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ran reports whether figure n was part of this run (-figures).
func (r *report) ran(n int) bool { return len(r.opts.figures) == 0 || r.opts.figures[n] }

// ceilings returns the read figure's ceilings and the reads measured
// against them.
func (r *report) ceilings() (grpcCeiling, restCeiling result, reads []result) {
	if len(r.Reads) < 2 {
		return result{}, result{}, nil
	}
	return r.Reads[0], r.Reads[1], r.Reads[2:]
}

// ceilingOf is the ceiling a read is measured against: the trivial handler
// behind the same server stack (gRPC, or HTTP + gateway for REST).
func (r *report) ceilingOf(rd result) (result, string) {
	g, rest, _ := r.ceilings()
	if strings.Contains(rd.Name, "REST") {
		return rest, "health Check via REST"
	}
	return g, "health Check via gRPC"
}

func (r *report) rows() []row {
	var rows []row
	if r.ran(1) {
		rows = append(rows, r.callbackRows()...)
	}
	if r.ran(2) {
		rows = append(rows, r.chargeRows()...)
	}
	grpcCeiling, _, reads := r.ceilings()
	for _, rd := range reads {
		ceiling, name := r.ceilingOf(rd)
		q := ratio(rd.Rate(), ceiling.Rate())
		figure := fmt.Sprintf("3. %s, calls/s (p50 %s, p99 %s)", rd.Name, fmtDur(rd.Pct(50)), fmtDur(rd.Pct(99)))
		if strings.Contains(rd.Name, "REST") {
			figure += fmt.Sprintf("; %.2f of the gRPC ceiling", ratio(rd.Rate(), grpcCeiling.Rate()))
		}
		target := grpcReadTarget
		if strings.Contains(rd.Name, "REST") {
			target = restReadTarget
		}
		rows = append(rows, row{figure, rate(rd), rate(ceiling) + " (" + name + ")", fmt.Sprintf("%.2f", q),
			fmt.Sprintf("≥ %.2f", target), q >= target && rd.Errors == 0})
	}
	rows = append(rows, r.scaleRows()...)
	rows = append(rows, r.memoryRows()...)
	if r.ran(6) {
		rows = append(rows, r.eventRows()...)
	}
	if r.ran(7) {
		rows = append(rows, r.webhookRows()...)
	}
	return rows
}

// callbackCPURatio is figure 1's target measure: papayd's CPU per
// notification over the SDK parse's.
func (r *report) callbackCPURatio() float64 {
	return ratio(float64(r.Callbacks.Papayd.CPUPerCall()), float64(r.Callbacks.SDK.CPUPerCall()))
}

// chargeCPURatio is figure 2's: papayd's CPU per charge over the RSA floor's.
func (r *report) chargeCPURatio() float64 {
	return ratio(float64(r.Charges.Papayd.CPUPerCall()), float64(r.Charges.Floor.CPUPerCall()))
}

func (r *report) callbackRows() []row {
	var rows []row
	cb := r.Callbacks
	cpu := r.callbackCPURatio()
	rows = append(rows, row{"1. Callback CPU per notification (20% duplicates)", usPerCall(cb.Papayd.CPUPerCall()),
		usPerCall(cb.SDK.CPUPerCall()) + " (SDK parse, bench process)", fmt.Sprintf("%.2f×", cpu), fmt.Sprintf("≤ %.1f×", callbackCPUTarget),
		cpu > 0 && cpu <= callbackCPUTarget && cb.Papayd.Errors == 0})
	q := ratio(cb.Papayd.Rate(), cb.SDK.Rate())
	rows = append(rows, row{"1. Callback ingestion, notifications/s (20% duplicates)", rate(cb.Papayd),
		rate(cb.SDK) + " (SDK parse only)", fmt.Sprintf("%.2f", q), infoTarget, q >= 0.60})
	c := cb.Check
	rows = append(rows, row{"1. Callbacks acknowledged but not recorded", fmt.Sprintf("%d of %d unique", c.Lost, c.UniqueAcked),
		"-", "-", "0, all acknowledged", c.Lost == 0 && c.Acked == c.Sent && c.Settled == c.UniqueSent})
	return rows
}

func (r *report) chargeRows() []row {
	ch := r.Charges
	cpu := r.chargeCPURatio()
	q := ratio(ch.Papayd.Rate(), ch.Raw.Rate())
	added := ch.Papayd.Pct(99) - ch.Raw.Pct(99)
	return []row{
		{"2. CreateCharge CPU per charge", usPerCall(ch.Papayd.CPUPerCall()),
			usPerCall(ch.Floor.CPUPerCall()) + " (RSA-2048 sign + verify, bench process)", fmt.Sprintf("%.2f×", cpu),
			fmt.Sprintf("≤ %.2f×", chargeCPUTarget), cpu > 0 && cpu <= chargeCPUTarget && ch.Papayd.Errors == 0 && ch.Floor.Errors == 0},
		{"2. CreateCharge throughput, charges/s", rate(ch.Papayd), rate(ch.Raw) + " (SDK core.Client)",
			fmt.Sprintf("%.2f", q), infoTarget, false},
		{"2. CreateCharge p99 latency", fmtDur(ch.Papayd.Pct(99)), fmtDur(ch.Raw.Pct(99)) + " (SDK core.Client)",
			fmt.Sprintf("%+.3f ms added", float64(added)/float64(time.Millisecond)), infoTarget, false},
	}
}

func (r *report) scaleRows() []row {
	var rows []row
	if n := len(r.Scale); n >= 2 {
		lo, hi := r.Scale[0], r.Scale[n-1]
		for i := range hi.Results {
			q := ratio(float64(hi.Results[i].Pct(99)), float64(lo.Results[i].Pct(99)))
			name := strings.SplitN(hi.Results[i].Name, " @", 2)[0]
			rows = append(rows, row{fmt.Sprintf("4. %s p99, %s vs %s records", name, count(hi.Records), count(lo.Records)),
				fmtDur(hi.Results[i].Pct(99)), fmtDur(lo.Results[i].Pct(99)), fmt.Sprintf("%.2f×", q), "≤ 1.5×",
				q <= 1.5 && hi.Results[i].Errors == 0})
		}
		rows = append(rows,
			row{fmt.Sprintf("4. Database bytes per agreement (%s)", count(hi.Records)), fmt.Sprintf("%.0f B", hi.bytesPerAgreement()),
				"-", "-", "< 1024 B", hi.bytesPerAgreement() < 1024},
			row{fmt.Sprintf("4. Database bytes per charge (%s)", count(hi.Records)), fmt.Sprintf("%.0f B", hi.bytesPerCharge()),
				"-", "-", "< 1024 B", hi.bytesPerCharge() < 1024})
	}
	return rows
}

func (r *report) memoryRows() []row {
	var rows []row
	memUnder := func(name string, kib, targetMiB int64) {
		rows = append(rows, row{"5. Peak RSS of papayd: " + name, mib(kib), "-", "-",
			fmt.Sprintf("< %d MiB", targetMiB), kib > 0 && kib < targetMiB*1024})
	}
	mem := func(name string, kib int64) { memUnder(name, kib, rssTargetMiB) }
	if r.ran(1) {
		mem("callbacks", r.Callbacks.Papayd.PeakRSSKiB)
	}
	if r.ran(2) {
		mem("CreateCharge", r.Charges.Papayd.PeakRSSKiB)
	}
	if r.ran(3) {
		var grpcPeak, restPeak int64
		for _, rd := range r.Reads {
			if strings.Contains(rd.Name, "REST") {
				restPeak = max(restPeak, rd.PeakRSSKiB)
			} else {
				grpcPeak = max(grpcPeak, rd.PeakRSSKiB)
			}
		}
		mem("reads over gRPC", grpcPeak)
		mem("reads over REST", restPeak)
	}
	if n := len(r.Scale); n > 0 {
		target := int64(rssTargetMiB)
		if r.Scale[n-1].Records >= largeRecords {
			target = rssLargeTargetMiB
		}
		memUnder("reads at "+count(r.Scale[n-1].Records)+" records", r.Scale[n-1].PeakRSSKiB, target)
	}
	return rows
}

// text is the summary for the terminal.
func (r *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\npapayd benchmark: %s, %d cores (%s), %s, concurrency %d, %s per load, total %s\n\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Memory, r.Machine.Go, r.opts.concurrency, r.opts.duration,
		r.Total.Round(time.Second))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tpapayd\tbaseline\tratio\ttarget\tmet?")
	for _, rw := range r.rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rw.Figure, rw.Papayd, rw.Baseline, rw.Ratio, rw.Target, rw.metText())
	}
	tw.Flush()
	return b.String()
}
