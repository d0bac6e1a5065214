package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured load.
type result struct {
	Name     string
	N        int           // calls that completed (successfully or not)
	Errors   int           // calls that failed
	FirstErr string        // the first failure, for the report
	Elapsed  time.Duration // wall time of the measured window
	lat      []time.Duration

	// Filled in for loads against papayd (zero for in-bench baselines).
	PeakRSSKiB int64         // VmHWM during the load (after a reset)
	CPU        time.Duration // papayd's CPU time during the load (the bench's for a baseline)
	BenchCPU   time.Duration // the bench process's CPU time during a load against papayd
	PGCPU      time.Duration // the PostgreSQL cluster's CPU time during the load (PostgreSQL only)
	Profile    *profile      // perf summary, when profiling
	// Answers of papayd's record cache during the load (reads only).
	CacheHits, CacheMisses uint64
}

// Rate is completed successful calls per second.
func (r result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N-r.Errors) / r.Elapsed.Seconds()
}

// Pct returns the p-th percentile (0..100) latency of the successful calls.
func (r result) Pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i]
}

// CPUPerCall is papayd's CPU time per completed call.
func (r result) CPUPerCall() time.Duration { return perCall(r.CPU, r.N) }

// BenchCPUPerCall is the bench's CPU time per call during a load against
// papayd: the load generator and, for CreateCharge, the simulator.
func (r result) BenchCPUPerCall() time.Duration { return perCall(r.BenchCPU, r.N) }

// PGCPUPerCall is the PostgreSQL cluster's CPU time per call.
func (r result) PGCPUPerCall() time.Duration { return perCall(r.PGCPU, r.N) }

func perCall(d time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return d / time.Duration(n)
}

// call is one request of a load: i is its index, unique within the load.
type call func(ctx context.Context, i int) error

// runLoad runs fn from conc goroutines until max calls were started or d
// has passed, whichever comes first, and times each call. A call that
// fails counts as an error and is left out of the latencies.
func runLoad(ctx context.Context, name string, conc, max int, d time.Duration, fn call) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, conc)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			own := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= max {
					break
				}
				t := time.Now()
				err := fn(ctx, i)
				el := time.Since(t)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("call %d: %v", i, err))
					continue
				}
				own = append(own, el)
			}
			lats[w] = own
		})
	}
	wg.Wait()
	r := result{Name: name, Elapsed: time.Since(start), Errors: int(errs.Load())}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	r.N = len(r.lat) + r.Errors
	slices.Sort(r.lat)
	if v := firstErr.Load(); v != nil {
		r.FirstErr = v.(string)
	}
	return r
}

// measure runs a load against papayd's processes f: it resets their peak
// RSS first, profiles the first with perf while the load runs (when prof
// is set), and records afterwards the largest peak RSS, their CPU time
// summed and, with pg, the PostgreSQL cluster's CPU time. An empty f
// measures a load that papayd takes no part in (a baseline); prof then
// profiles the bench.
func measure(f fleet, pg *pgServer, prof *profiler, load func() result) result {
	pids := f.pids()
	target := selfPID
	if len(pids) > 0 {
		target = pids[0]
	}
	for _, pid := range pids {
		resetPeakRSS(pid)
	}
	sum := func() time.Duration {
		var t time.Duration
		for _, pid := range pids {
			t += cpuTime(pid)
		}
		return t
	}
	cpu0, self0, pg0 := sum(), cpuTime(selfPID), pg.cpu()
	if len(pids) == 0 {
		cpu0 = self0
	}
	stopProf := prof.start(target)
	r := load()
	r.Profile = stopProf()
	if len(pids) == 0 {
		r.CPU = cpuTime(selfPID) - cpu0
		return r
	}
	r.CPU = sum() - cpu0
	r.BenchCPU = cpuTime(selfPID) - self0
	if pg != nil {
		r.PGCPU = pg.cpu() - pg0
	}
	for _, pid := range pids {
		hwm, _, _ := procStatus(pid)
		r.PeakRSSKiB = max(r.PeakRSSKiB, hwm)
	}
	return r
}

// warmup runs fn for a short while (connections, caches, JIT-free but
// cold paths) without recording anything.
func warmup(ctx context.Context, conc int, d time.Duration, fn call) {
	runLoad(ctx, "warmup", conc, 1<<30, d, fn)
}

// fmtDur formats a latency in milliseconds with three decimals.
func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}
