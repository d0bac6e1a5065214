// Command bench measures papayd against baselines taken in the same run:
//
//	go run ./tests/bench                 # the full suite (about 8 minutes on 2 cores)
//	go run ./tests/bench -quick          # a short run for CI (about 70 seconds)
//	go run ./tests/bench -out docs/PERFORMANCE.md
//
// It builds ./cmd/papayd into a temporary directory and runs it as a
// separate process in live mode against a WeChat Pay simulator
// (internal/wechat/sandbox) hosted in the bench process on 127.0.0.1 over HTTPS,
// configured from key files exactly as tests/soak_test.go does, so that
// papayd's RSS and CPU are papayd's alone. Every load is bounded in count
// and time and talks to loopback addresses only.
//
// Figures (each a ratio against its baseline, same concurrency, same run):
//
//  1. callback ingestion: POST /wechatpay/notify end to end against the
//     wechatpay-go SDK's notify.Handler.ParseNotifyRequest alone, on the
//     same pre-signed notifications (20% duplicates), then a check that
//     every acknowledged notification id is recorded;
//  2. CreateCharge over gRPC through papayd to the simulator against the
//     SDK's core.Client POSTing the same deductions to the same simulator;
//  3. GetAgreement and GetCharge over gRPC and REST against
//     grpc.health.v1 Check served by the same stack (the gRPC server, or
//     the HTTP server and gateway: GET /v1/health);
//  4. p99 of GetAgreement, GetCharge and ListCharges at growing database
//     sizes, and database bytes per agreement and per charge;
//  5. papayd's peak RSS (VmHWM, reset before each load) under each load;
//  6. event latency: from a charge.succeeded's commit (and from the
//     CreateCharge answer) to its receipt by a live StreamEvents consumer,
//     p50 and p99;
//  7. webhook deliveries per second to one endpoint on a local receiver
//     while charges write events.
//
// With perf installed, papayd's CPU is sampled during each load and the
// report breaks it down by what it was spent on. The report goes to stdout
// and, with -out, to a Markdown file. No threshold fails the run: a target
// not met is reported as not met.
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// options are the command line.
type options struct {
	quick       bool
	out         string
	concurrency int
	duration    time.Duration
	callbacks   int   // unique notifications of figure 1
	reads       int   // seeded agreements and charges of figure 3
	sizes       []int // database sizes of figure 4
	profile     bool
	keep        bool
	figures     map[int]bool // which figures to run (all when empty)
	args        []string
}

func parseFlags() (options, error) {
	var o options
	var sizes string
	flag.BoolVar(&o.quick, "quick", false, "short run for CI: 2 s loads, 2,000 callbacks, sizes 10^3 and 10^4")
	flag.StringVar(&o.out, "out", "", "also write the report as Markdown to this file (e.g. docs/PERFORMANCE.md)")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent callers of every load")
	flag.DurationVar(&o.duration, "duration", 0, "length of each measured load (default 10s, 2s with -quick)")
	flag.IntVar(&o.callbacks, "callbacks", 0, "unique notifications of the callback figure (default 20000, 2000 with -quick)")
	flag.StringVar(&sizes, "sizes", "", "comma-separated database sizes of the scale figure (default 10000,100000,1000000; 1000,10000 with -quick)")
	flag.BoolVar(&o.profile, "profile", true, "sample papayd's CPU with perf during each load (when perf is installed)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, logs, perf data)")
	var figures string
	flag.StringVar(&figures, "figures", "", "comma-separated figures to run, e.g. 1,3,6,7 (default all; memory, figure 5, is measured with each)")
	flag.Parse()
	o.args = os.Args[1:]
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if o.concurrency < 1 {
		return o, errors.New("-concurrency must be at least 1")
	}
	for f := range strings.SplitSeq(figures, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 7 || n == 5 {
			return o, fmt.Errorf("-figures: %q is not a figure from 1 to 4, 6 or 7", f)
		}
		if o.figures == nil {
			o.figures = map[int]bool{}
		}
		o.figures[n] = true
	}
	def := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if o.quick {
				*v = quick
			}
		}
	}
	if o.duration == 0 {
		o.duration = 10 * time.Second
		if o.quick {
			o.duration = 2 * time.Second
		}
	}
	def(&o.callbacks, 20000, 2000)
	def(&o.reads, 10000, 10000)
	if sizes == "" {
		sizes = "10000,100000,1000000"
		if o.quick {
			sizes = "1000,10000"
		}
	}
	for s := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 {
			return o, fmt.Errorf("-sizes: %q is not a size of at least 100", s)
		}
		if len(o.sizes) > 0 && n <= o.sizes[len(o.sizes)-1] {
			return o, errors.New("-sizes must grow")
		}
		o.sizes = append(o.sizes, n)
	}
	return o, nil
}

// figure runs figure n as a phase, unless -figures leaves it out.
func (r *report) figure(n int, name string, fn func() error) error {
	if len(r.opts.figures) > 0 && !r.opts.figures[n] {
		return nil
	}
	return r.phase(name, fn)
}

var started = time.Now()

// logf prints progress to stderr, stamped with the time since start.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// phase times one step of the run.
func (r *report) phase(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	r.Phases = append(r.Phases, timing{name, time.Since(start)})
	return err
}

func run(ctx context.Context, o options) error {
	rep := &report{opts: o, Machine: describeMachine(), Started: started}
	tmp, err := os.MkdirTemp("", "papayd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	var prof *profiler
	if o.profile {
		if prof = newProfiler(filepath.Join(tmp, "profiles")); prof != nil && !prof.perf {
			logf("perf is not installed: papayd is not profiled")
		}
	}

	var bin string
	if err := rep.phase("build ./cmd/papayd", func() (err error) {
		bin, err = buildPapayd(tmp)
		return err
	}); err != nil {
		return err
	}
	logf("built %s", bin)

	// The simulator, and papayd's live-mode configuration from files.
	creds, err := sandbox.NewCredentials()
	if err != nil {
		return err
	}
	sb, err := sandbox.New(sandbox.Options{Credentials: creds})
	if err != nil {
		return err
	}
	defer sb.Close()
	// Served over HTTPS, as WeChat Pay is (live mode refuses http://),
	// under a certificate papayd trusts through PAPAYD_WECHATPAY_CA_FILE.
	wx := httptest.NewUnstartedServer(sb.APIHandler())
	wx.Config.ReadHeaderTimeout = 10 * time.Second
	wx.Config.ErrorLog = log.New(io.Discard, "", 0)
	wx.StartTLS()
	defer wx.Close()
	wxBase := wx.URL
	wxRoots := x509.NewCertPool()
	wxRoots.AddCert(wx.Certificate())
	keys := filepath.Join(tmp, "keys")
	if err := creds.WriteFiles(keys); err != nil {
		return err
	}
	wxCA := filepath.Join(keys, "wechatpay-ca.pem")
	if err := os.WriteFile(wxCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wx.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	f := sandbox.FilesIn(keys)
	env := map[string]string{
		"PAPAYD_MODE":                   "live",
		"PAPAYD_AUTH":                   "none", // loopback listeners: the bench measures papayd, not key checks
		"PAPAYD_WECHATPAY_BASE_URL":     wxBase,
		"PAPAYD_SP_MCHID":               creds.MchID,
		"PAPAYD_SP_APPID":               creds.SPAppID,
		"PAPAYD_SUB_MCHID":              creds.SubMchID,
		"PAPAYD_SUB_APPID":              creds.SubAppID,
		"PAPAYD_MCH_CERT_SERIAL":        creds.MerchantSerial,
		"PAPAYD_MCH_PRIVATE_KEY_FILE":   f.MerchantKey,
		"PAPAYD_APIV3_KEY_FILE":         f.APIv3Key,
		"PAPAYD_WECHATPAY_CERT_FILE":    f.PlatformCert,
		"PAPAYD_WECHATPAY_CA_FILE":      wxCA,
		"PAPAYD_MERCHANT_CATEGORY_CODE": "5999",
	}

	// The database of figures 1 to 3, seeded before papayd starts.
	mainDir := filepath.Join(tmp, "main")
	if err := rep.phase(fmt.Sprintf("seed %d agreements, %d settled and %d open charges", o.reads, o.reads, o.callbacks), func() error {
		store, err := db.Open(ctx, filepath.Join(mainDir, "papayd.db"))
		if err != nil {
			return err
		}
		err = errors.Join(seedAgreements(ctx, store, creds, 0, o.reads),
			seedCharges(ctx, store, creds, settledCharges, 0, o.reads, o.reads),
			seedCharges(ctx, store, creds, openCharges, 0, o.callbacks, o.reads))
		return errors.Join(err, store.Close())
	}); err != nil {
		return err
	}
	p, err := startPapayd(bin, mainDir, env)
	if err != nil {
		return err
	}
	defer func() { _ = p.stop() }()
	_, rep.IdleRSSKiB, _ = procStatus(p.pid())
	logf("papayd pid %d: gRPC %s, HTTP %s; idle RSS %.1f MiB", p.pid(), p.grpcAddr, p.httpAddr, float64(rep.IdleRSSKiB)/1024)

	if err := rep.figure(1, "figure 1: callbacks", func() error { return figureCallbacks(ctx, rep, p, sb, creds, prof) }); err != nil {
		return err
	}
	if err := rep.figure(2, "figure 2: CreateCharge", func() error {
		return figureCharges(ctx, rep, p, sb, creds, wxBase, wxRoots, prof)
	}); err != nil {
		return err
	}
	if err := rep.figure(3, "figure 3: reads", func() error {
		logf("figure 3: reads of %d seeded agreements and charges", o.reads)
		r := newReadCalls(p, o.reads, o.concurrency)
		rep.Reads = runReads(ctx, p, prof, []readLoad{
			{name: "Health Check gRPC (ceiling)", fn: r.healthCheck},
			{name: "Health Check REST (REST ceiling)", fn: r.restHealth},
			{name: "GetAgreement gRPC", fn: r.getAgreement},
			{name: "GetCharge gRPC", fn: r.getCharge},
			{name: "GetAgreement REST", fn: r.restAgreement},
			{name: "GetCharge REST", fn: r.restCharge},
		}, o.concurrency, o.duration)
		return ctx.Err()
	}); err != nil {
		return err
	}
	if err := rep.figure(6, "figure 6: event latency", func() error { return figureEvents(ctx, rep, p, sb) }); err != nil {
		return err
	}
	if err := rep.figure(7, "figure 7: webhook deliveries", func() error { return figureWebhooks(ctx, rep, p, sb) }); err != nil {
		return err
	}
	if err := p.stop(); err != nil {
		logf("stopping papayd: %v", err)
	}

	if err := rep.figure(4, "figure 4: scale", func() (err error) {
		logf("figure 4: scale %v", o.sizes)
		rep.Scale, err = runScale(ctx, bin, filepath.Join(tmp, "scale"), env, creds, o.sizes, o.concurrency, o.duration, prof)
		return err
	}); err != nil {
		return err
	}
	rep.Total = time.Since(started)
	md := rep.markdown()
	fmt.Println(rep.text())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// figureCallbacks measures figure 1.
func figureCallbacks(ctx context.Context, rep *report, p *papayd, sb *sandbox.Sandbox, creds *sandbox.Credentials, prof *profiler) error {
	o := rep.opts
	stream, err := buildCallbacks(sb, creds, o.callbacks, o.reads, o.concurrency)
	if err != nil {
		return err
	}
	rep.Callbacks.Stream, rep.Callbacks.Build = len(stream.notices), stream.built
	logf("figure 1: signed %d notifications (%d unique) in %s", len(stream.notices), stream.unique, stream.built.Round(time.Millisecond))
	rep.Callbacks.SDK = measure(0, prof, func() result {
		r, e := sdkParse(ctx, creds, stream, o.concurrency, o.duration)
		err = e
		return r
	})
	if err != nil {
		return err
	}
	logf("  SDK ParseNotifyRequest %9.0f/s (%d calls)", rep.Callbacks.SDK.Rate(), rep.Callbacks.SDK.N)
	acked := make([]atomic.Bool, len(stream.notices))
	commits0 := scrape(p, "papayd_db_commit_transactions_count", "papayd_db_commit_transactions_sum")
	rep.Callbacks.Papayd = measure(p.pid(), prof, func() result { return postCallbacks(ctx, p, stream, o.concurrency, acked) })
	commits1 := scrape(p, "papayd_db_commit_transactions_count", "papayd_db_commit_transactions_sum")
	rep.Callbacks.Commits, rep.Callbacks.Transactions = commits1[0]-commits0[0], commits1[1]-commits0[1]
	logf("  papayd /wechatpay/notify %9.0f/s (%d calls, %d errors)", rep.Callbacks.Papayd.Rate(),
		rep.Callbacks.Papayd.N, rep.Callbacks.Papayd.Errors)
	rep.Callbacks.Check, err = verifyCallbacks(filepath.Join(p.dataDir, "papayd.db"), stream, acked)
	c := rep.Callbacks.Check
	logf("  check: %d sent (%d unique), %d acknowledged, %d recorded (%d applied), %d lost, %d charges settled",
		c.Sent, c.UniqueSent, c.Acked, c.Recorded, c.Applied, c.Lost, c.Settled)
	return err
}

// figureCharges measures figure 2.
func figureCharges(ctx context.Context, rep *report, p *papayd, sb *sandbox.Sandbox, creds *sandbox.Credentials, wxBase string, wxRoots *x509.CertPool, prof *profiler) error {
	o := rep.opts
	n := max(16, 2*o.concurrency)
	start := time.Now()
	contracts, err := signAgreements(ctx, p, sb, "oBench", n, o.concurrency)
	if err != nil {
		return err
	}
	rep.Charges.Agreements, rep.Charges.Setup = n, time.Since(start)
	logf("figure 2: %d agreements presigned through papayd and signed in %s", n, rep.Charges.Setup.Round(time.Millisecond))
	if err := dropSuccessNotifications(sb); err != nil {
		return err
	}
	defer sb.ClearFaults()
	raw, err := rawDeduct(ctx, creds, wxBase, wxRoots, "http://"+p.httpAddr+"/wechatpay/notify", contracts, o.concurrency)
	if err != nil {
		return err
	}
	charge := papaydCharge(p, contracts, "PPD")
	viaPapayd := func(ctx context.Context, i int) error { _, err := charge(ctx, i); return err }
	warm := min(o.duration/4, time.Second)
	warmup(ctx, o.concurrency, warm, raw)
	rep.Charges.Raw = measure(0, prof, func() result {
		return runLoad(ctx, "SDK core.Client deduction", o.concurrency, 1_000_000, o.duration, raw)
	})
	logf("  SDK core.Client %9.0f/s  p50 %s  p99 %s  errors %d", rep.Charges.Raw.Rate(),
		fmtDur(rep.Charges.Raw.Pct(50)), fmtDur(rep.Charges.Raw.Pct(99)), rep.Charges.Raw.Errors)
	warmup(ctx, o.concurrency, warm, viaPapayd)
	rep.Charges.Papayd = measure(p.pid(), prof, func() result {
		return runLoad(ctx, "papayd CreateCharge gRPC", o.concurrency, 1_000_000, o.duration, viaPapayd)
	})
	logf("  papayd CreateCharge %9.0f/s  p50 %s  p99 %s  errors %d", rep.Charges.Papayd.Rate(),
		fmtDur(rep.Charges.Papayd.Pct(50)), fmtDur(rep.Charges.Papayd.Pct(99)), rep.Charges.Papayd.Errors)
	return ctx.Err()
}
