// Command bench measures papayd against baselines taken in the same run:
//
//	go run ./tests/bench                 # the full suite (most of it figure 4's 10^7 records)
//	go run ./tests/bench -quick          # a short run for CI (about 90 seconds)
//	go run ./tests/bench -out docs/PERFORMANCE.md
//	go run ./tests/bench -figures 1,2,3,4 -stores sqlite,sqlite-nocache,postgres -replicas 1,2 -section -out docs/PERFORMANCE.md
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
//  2. CreateCharge over gRPC through papayd to the simulator: its CPU per
//     charge against the bench's own CPU per RSA-2048 signature and
//     verification (the floor, floor.go), and its rate and p99 against the
//     SDK's core.Client POSTing the same deductions to the same simulator;
//  3. GetAgreement and GetCharge over gRPC and REST against
//     grpc.health.v1 Check served by the same stack (the gRPC server, or
//     the HTTP server and gateway: GET /v1/health);
//  4. p99 of GetAgreement, GetCharge and ListCharges at growing database
//     sizes (up to 10^7 records on SQLite, seeded as bulkseed.go says),
//     and database bytes per agreement and per charge;
//  5. papayd's peak RSS (VmHWM, reset before each load) under each load;
//  6. event latency: from a charge.succeeded's commit (and from the
//     CreateCharge answer) to its receipt by a live StreamEvents consumer,
//     p50 and p99;
//  7. webhook deliveries per second to one endpoint on a local receiver
//     while charges write events, against a bare net/http client POSTing
//     the same requests to the same kind of receiver.
//
// -stores adds configurations to SQLite's: sqlite-nocache runs figure 3
// again with PAPAYD_RECORD_CACHE=0, and postgres runs figures 1 to 4 on a
// throwaway PostgreSQL cluster (internal/pgtest, stopped when the bench
// ends) once per count of -replicas: that many papayd processes on one
// database, fresh for figures 1 to 3 and for figure 4, the calls
// alternating between them. Each configuration measures its baselines
// again, and papayd's CPU per call (summed over the replicas) and the
// cluster's; they are compared in the section "PostgreSQL and replicas",
// which -section writes into -out alone, keeping the rest of the file.
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
	sizes       []int // database sizes of figure 4 on SQLite
	pgSizes     []int // and on PostgreSQL
	profile     bool
	keep        bool
	figures     map[int]bool // which figures to run (all when empty)
	stores      []storeConfig
	section     bool // -out: replace only the section of the configurations
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
	flag.StringVar(&sizes, "sizes", "", "comma-separated database sizes of the scale figure (default 10000,100000,1000000,10000000, on PostgreSQL 10000,100000,1000000; 1000,10000 with -quick)")
	flag.BoolVar(&o.profile, "profile", true, "sample papayd's CPU with perf during each load (when perf is installed)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, logs, perf data)")
	var figures string
	flag.StringVar(&figures, "figures", "", "comma-separated figures to run, e.g. 1,3,6,7 (default all; memory, figure 5, is measured with each)")
	var stores, replicas string
	flag.StringVar(&stores, "stores", "sqlite", "comma-separated stores to measure: sqlite (every figure), sqlite-nocache (figure 3 with PAPAYD_RECORD_CACHE=0), postgres (figures 1 to 4 on a throwaway cluster of internal/pgtest, once per -replicas)")
	flag.StringVar(&replicas, "replicas", "1", "comma-separated counts of papayd replicas on PostgreSQL, e.g. 1,2")
	flag.BoolVar(&o.section, "section", false, "with -out, write only the section \"PostgreSQL and replicas\" into the file, replacing it (or adding it before \"What the profiles show\"), and keep the rest")
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
	var err error
	if o.stores, err = parseStores(stores, replicas); err != nil {
		return o, err
	}
	if len(o.stores) == 0 || (o.stores[0] != storeConfig{Replicas: 1}) {
		if o.out != "" && !o.section {
			return o, errors.New("-out without sqlite in -stores needs -section: the rest of the file is SQLite's")
		}
	}
	if o.section && o.out == "" {
		return o, errors.New("-section needs -out")
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
	// PostgreSQL is seeded row by row with its indexes in place (only
	// SQLite's seeding is the bulk one of bulkseed.go), so its sizes stop
	// at 10^6 unless -sizes names others.
	pgSizes := sizes
	switch {
	case sizes != "":
	case o.quick:
		sizes, pgSizes = "1000,10000", "1000,10000"
	default:
		sizes, pgSizes = "10000,100000,1000000,10000000", "10000,100000,1000000"
	}
	if o.sizes, err = parseSizes(sizes); err != nil {
		return o, err
	}
	o.pgSizes, err = parseSizes(pgSizes)
	return o, err
}

// parseSizes reads a growing list of database sizes (-sizes).
func parseSizes(list string) ([]int, error) {
	var sizes []int
	for s := range strings.SplitSeq(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 100 {
			return nil, fmt.Errorf("-sizes: %q is not a size of at least 100", s)
		}
		if len(sizes) > 0 && n <= sizes[len(sizes)-1] {
			return nil, errors.New("-sizes must grow")
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
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

// phase times one step of the run; a configuration's steps are the main
// report's, named after the configuration.
func (r *report) phase(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	if r.root != nil {
		r.root.Phases = append(r.root.Phases, timing{r.store.Name() + ": " + name, time.Since(start)})
	} else {
		r.Phases = append(r.Phases, timing{name, time.Since(start)})
	}
	return err
}

// bench is what every configuration's run shares: papayd's binary, the
// simulator and papayd's live-mode settings.
type bench struct {
	tmp     string
	bin     string
	creds   *sandbox.Credentials
	sb      *sandbox.Sandbox
	wxBase  string
	wxRoots *x509.CertPool
	env     map[string]string
	prof    *profiler
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
	b := &bench{tmp: tmp}
	if o.profile {
		if b.prof = newProfiler(filepath.Join(tmp, "profiles")); b.prof != nil && !b.prof.perf {
			logf("perf is not installed: papayd is not profiled")
		}
	}

	if err := rep.phase("build ./cmd/papayd", func() (err error) {
		b.bin, err = buildPapayd(tmp)
		return err
	}); err != nil {
		return err
	}
	logf("built %s", b.bin)

	// The simulator, and papayd's live-mode configuration from files.
	if b.creds, err = sandbox.NewCredentials(); err != nil {
		return err
	}
	creds := b.creds
	if b.sb, err = sandbox.New(sandbox.Options{Credentials: creds}); err != nil {
		return err
	}
	defer b.sb.Close()
	// Served over HTTPS, as WeChat Pay is (live mode refuses http://),
	// under a certificate papayd trusts through PAPAYD_WECHATPAY_CA_FILE.
	wx := httptest.NewUnstartedServer(b.sb.APIHandler())
	wx.Config.ReadHeaderTimeout = 10 * time.Second
	wx.Config.ErrorLog = log.New(io.Discard, "", 0)
	wx.StartTLS()
	defer wx.Close()
	b.wxBase = wx.URL
	b.wxRoots = x509.NewCertPool()
	b.wxRoots.AddCert(wx.Certificate())
	keys := filepath.Join(tmp, "keys")
	if err := creds.WriteFiles(keys); err != nil {
		return err
	}
	wxCA := filepath.Join(keys, "wechatpay-ca.pem")
	if err := os.WriteFile(wxCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wx.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	f := sandbox.FilesIn(keys)
	b.env = map[string]string{
		"PAPAYD_MODE":                   "live",
		"PAPAYD_AUTH":                   "none", // loopback listeners: the bench measures papayd, not key checks
		"PAPAYD_WECHATPAY_BASE_URL":     b.wxBase,
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

	// The PostgreSQL cluster, when a configuration needs it: stopped
	// when the run ends, however it ends.
	var pg *pgServer
	defer func() {
		if err := pg.stop(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}()
	for _, cfg := range o.stores {
		if cfg.Postgres && pg == nil {
			if err := rep.phase("start PostgreSQL (internal/pgtest)", func() (err error) {
				pg, err = startPostgres(ctx)
				return err
			}); err != nil {
				return err
			}
			logf("PostgreSQL: %s (postmaster pid %d)", pg.cluster.URL(), pg.postmaster)
		}
		sub := rep
		if cfg != (storeConfig{Replicas: 1}) {
			sub = &report{opts: o, Machine: rep.Machine, root: rep, store: cfg}
			sub.opts.figures = map[int]bool{}
			for _, n := range cfg.figures() {
				if rep.ran(n) {
					sub.opts.figures[n] = true
				}
			}
			if len(sub.opts.figures) == 0 {
				continue
			}
			if cfg.Postgres {
				sub.pg = pg
			}
			rep.Stores = append(rep.Stores, sub)
		} else {
			rep.sqlite = true
		}
		if err := b.runStore(ctx, sub, cfg); err != nil {
			return fmt.Errorf("%s: %w", cfg.Name(), err)
		}
	}

	rep.Total = time.Since(started)
	if rep.sqlite {
		fmt.Println(rep.text())
	}
	if len(rep.Stores) > 0 {
		fmt.Println(rep.storesSection())
	}
	if o.out != "" {
		if err := rep.write(o.out); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// slug names a configuration's databases and directories.
func (c storeConfig) slug() string {
	switch {
	case c.Postgres:
		return fmt.Sprintf("pg%d", c.Replicas)
	case c.NoCache:
		return "sqlite_nocache"
	}
	return "sqlite"
}

// runStore runs rep's figures on configuration cfg: figures 1, 2, 3, 6
// and 7 on one database seeded before papayd starts, then figure 4 on a
// database of its own.
func (b *bench) runStore(ctx context.Context, rep *report, cfg storeConfig) error {
	o := rep.opts
	rep.LoadStart = loadAvg()
	defer func() { rep.LoadEnd = loadAvg() }()
	if cfg.Postgres {
		logf("%s", cfg.Name())
	}
	if rep.ran(1) || rep.ran(2) || rep.ran(3) || rep.ran(6) || rep.ran(7) {
		var d *database
		if err := rep.phase(fmt.Sprintf("seed %d agreements, %d settled and %d open charges", o.reads, o.reads, o.callbacks), func() (err error) {
			if d, err = newDatabase(ctx, cfg, rep.pg, filepath.Join(b.tmp, cfg.slug()+"_main"), cfg.slug()+"_main"); err != nil {
				return err
			}
			store, err := d.open(ctx)
			if err != nil {
				return err
			}
			w := d.seedWorkers()
			err = errors.Join(seedAgreements(ctx, store, w, b.creds, 0, o.reads),
				seedCharges(ctx, store, w, b.creds, settledCharges, 0, o.reads, o.reads),
				seedCharges(ctx, store, w, b.creds, openCharges, 0, o.callbacks, o.reads))
			return errors.Join(err, store.Close())
		}); err != nil {
			return err
		}
		f, err := d.start(b.bin, b.env)
		if err != nil {
			return err
		}
		defer func() { _ = f.stop() }()
		_, rep.IdleRSSKiB, _ = procStatus(f[0].pid())
		for _, p := range f {
			logf("papayd pid %d: gRPC %s, HTTP %s", p.pid(), p.grpcAddr, p.httpAddr)
		}

		if err := rep.figure(1, "figure 1: callbacks", func() error { return b.figureCallbacks(ctx, rep, f, d) }); err != nil {
			return err
		}
		if err := rep.figure(2, "figure 2: CreateCharge", func() error { return b.figureCharges(ctx, rep, f) }); err != nil {
			return err
		}
		if err := rep.figure(3, "figure 3: reads", func() error {
			logf("figure 3: reads of %d seeded agreements and charges", o.reads)
			r := newReadCalls(f, o.reads, o.concurrency)
			rep.Reads = runReads(ctx, f, rep.pg, b.prof, []readLoad{
				{name: "Health Check gRPC (ceiling)", fn: r.healthCheck},
				{name: "Health Check REST (REST ceiling)", fn: r.restHealth},
				{name: "GetAgreement gRPC", fn: r.getAgreement},
				{name: "GetCharge gRPC", fn: r.getCharge},
				{name: "GetAgreement REST", fn: r.restAgreement},
				{name: "GetCharge REST", fn: r.restCharge},
			}, o.concurrency, o.duration, readRounds(o.duration))
			return ctx.Err()
		}); err != nil {
			return err
		}
		if err := rep.figure(6, "figure 6: event latency", func() error { return figureEvents(ctx, rep, f[0], b.sb) }); err != nil {
			return err
		}
		if err := rep.figure(7, "figure 7: webhook deliveries", func() error { return figureWebhooks(ctx, rep, f[0], b.sb) }); err != nil {
			return err
		}
		if err := f.stop(); err != nil {
			logf("stopping papayd: %v", err)
		}
	}

	return rep.figure(4, "figure 4: scale", func() (err error) {
		sizes := o.sizes
		if cfg.Postgres {
			sizes = o.pgSizes
		}
		logf("figure 4: scale %v", sizes)
		d, err := newDatabase(ctx, cfg, rep.pg, filepath.Join(b.tmp, cfg.slug()+"_scale"), cfg.slug()+"_scale")
		if err != nil {
			return err
		}
		rep.Scale, err = runScale(ctx, b, rep.pg, d, sizes, o.concurrency, o.duration)
		return err
	})
}

// figureCallbacks measures figure 1.
func (b *bench) figureCallbacks(ctx context.Context, rep *report, f fleet, d *database) error {
	o := rep.opts
	stream, err := buildCallbacks(b.sb, b.creds, o.callbacks, o.reads, o.concurrency)
	if err != nil {
		return err
	}
	rep.Callbacks.Stream, rep.Callbacks.Build = len(stream.notices), stream.built
	logf("figure 1: signed %d notifications (%d unique) in %s", len(stream.notices), stream.unique, stream.built.Round(time.Millisecond))
	// The baseline right before and right after papayd's load, half the
	// load time each, so that it sees the same machine (whose speed drifts
	// over minutes on shared hosts), as figure 2's floor does.
	sdk := func(prof *profiler) (result, error) {
		var err error
		r := measure(nil, nil, prof, func() result {
			r, e := sdkParse(ctx, b.creds, stream, o.concurrency, o.duration/2)
			err = e
			return r
		})
		return r, err
	}
	if rep.Callbacks.SDKBefore, err = sdk(b.prof); err != nil {
		return err
	}
	acked := make([]atomic.Bool, len(stream.notices))
	commits0 := f.scrape("papayd_db_commit_transactions_count", "papayd_db_commit_transactions_sum")
	rep.Callbacks.Papayd = measure(f, rep.pg, b.prof, func() result { return postCallbacks(ctx, f, stream, o.concurrency, acked) })
	commits1 := f.scrape("papayd_db_commit_transactions_count", "papayd_db_commit_transactions_sum")
	if rep.Callbacks.SDKAfter, err = sdk(nil); err != nil {
		return err
	}
	rep.Callbacks.SDK = mergeResults(rep.Callbacks.SDKBefore, rep.Callbacks.SDKAfter)
	logf("  SDK ParseNotifyRequest %9.0f/s (%d calls), %s CPU per call (%s before papayd's load, %s after)", rep.Callbacks.SDK.Rate(),
		rep.Callbacks.SDK.N, usPerCall(rep.Callbacks.SDK.CPUPerCall()), usPerCall(rep.Callbacks.SDKBefore.CPUPerCall()),
		usPerCall(rep.Callbacks.SDKAfter.CPUPerCall()))
	rep.Callbacks.Commits, rep.Callbacks.Transactions = commits1[0]-commits0[0], commits1[1]-commits0[1]
	logf("  papayd /wechatpay/notify %9.0f/s (%d calls, %d errors) %s", rep.Callbacks.Papayd.Rate(),
		rep.Callbacks.Papayd.N, rep.Callbacks.Papayd.Errors, rep.Callbacks.Papayd.FirstErr)
	if rep.Callbacks.Papayd.Errors > 0 {
		rep.Callbacks.StorageErr = f.logLine("notification not stored")
	}
	rep.Callbacks.Check, err = verifyCallbacks(d, stream, acked)
	c := rep.Callbacks.Check
	logf("  check: %d sent (%d unique), %d acknowledged, %d recorded (%d applied), %d lost, %d charges settled",
		c.Sent, c.UniqueSent, c.Acked, c.Recorded, c.Applied, c.Lost, c.Settled)
	return err
}

// figureCharges measures figure 2.
func (b *bench) figureCharges(ctx context.Context, rep *report, f fleet) error {
	o := rep.opts
	n := max(16, 2*o.concurrency)
	start := time.Now()
	// Each configuration's users are new to the simulator, which holds
	// the contracts of the configurations before.
	contracts, err := signAgreements(ctx, f, b.sb, "oBench"+strings.ToUpper(rep.store.slug()), n, o.concurrency)
	if err != nil {
		return err
	}
	rep.Charges.Agreements, rep.Charges.Setup = n, time.Since(start)
	logf("figure 2: %d agreements presigned through papayd and signed in %s", n, rep.Charges.Setup.Round(time.Millisecond))
	if err := dropSuccessNotifications(b.sb); err != nil {
		return err
	}
	defer b.sb.ClearFaults()
	raw, err := rawDeduct(ctx, b.creds, b.wxBase, b.wxRoots, "http://"+f[0].httpAddr+"/wechatpay/notify", contracts, o.concurrency)
	if err != nil {
		return err
	}
	charge := papaydCharge(f, contracts, "PPD")
	viaPapayd := func(ctx context.Context, i int) error { _, err := charge(ctx, i); return err }
	warm := min(o.duration/4, time.Second)
	warmup(ctx, o.concurrency, warm, raw)
	rep.Charges.Raw = measure(nil, nil, b.prof, func() result {
		return runLoad(ctx, "SDK core.Client deduction", o.concurrency, 1_000_000, o.duration, raw)
	})
	logf("  SDK core.Client %9.0f/s  p50 %s  p99 %s  errors %d", rep.Charges.Raw.Rate(),
		fmtDur(rep.Charges.Raw.Pct(50)), fmtDur(rep.Charges.Raw.Pct(99)), rep.Charges.Raw.Errors)
	warmup(ctx, o.concurrency, warm, viaPapayd)
	msg, err := deductionMessage(b.creds, contracts[0])
	if err != nil {
		return err
	}
	// The floor right before and right after papayd's load, so that it
	// sees the same machine (other work on the shared cores included).
	floorFor := min(o.duration/2, floorDuration) // 1 s each with -quick
	rep.Charges.FloorBytes = len(msg)
	rep.Charges.FloorBefore = signVerifyFloor(ctx, b.creds.MerchantKey, msg, floorFor)
	rep.Charges.Papayd = measure(f, rep.pg, b.prof, func() result {
		return runLoad(ctx, "papayd CreateCharge gRPC", o.concurrency, 1_000_000, o.duration, viaPapayd)
	})
	rep.Charges.FloorAfter = signVerifyFloor(ctx, b.creds.MerchantKey, msg, floorFor)
	rep.Charges.Floor = mergeResults(rep.Charges.FloorBefore, rep.Charges.FloorAfter)
	logf("  floor: RSA-2048 sign + verify %s CPU per operation (%s before, %s after)", usPerCall(rep.Charges.Floor.CPUPerCall()),
		usPerCall(rep.Charges.FloorBefore.CPUPerCall()), usPerCall(rep.Charges.FloorAfter.CPUPerCall()))
	logf("  papayd CreateCharge %9.0f/s  p50 %s  p99 %s  errors %d %s", rep.Charges.Papayd.Rate(),
		fmtDur(rep.Charges.Papayd.Pct(50)), fmtDur(rep.Charges.Papayd.Pct(99)), rep.Charges.Papayd.Errors, rep.Charges.Papayd.FirstErr)
	return ctx.Err()
}
