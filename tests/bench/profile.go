package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var selfPID = os.Getpid()

// profiler samples CPU while a load runs: papayd with `perf record -g`
// (perf sees every thread and the kernel; papayd's binary keeps its symbols), the
// bench process itself (the in-process baselines) with runtime/pprof,
// because `go run` strips the bench binary. A nil profiler does nothing.
type profiler struct {
	dir  string
	perf bool
	seq  int
}

// newProfiler returns a profiler writing into dir.
func newProfiler(dir string) *profiler {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	_, err := exec.LookPath("perf")
	return &profiler{dir: dir, perf: err == nil}
}

// profile is where one load's CPU samples went.
type profile struct {
	Source  string  // perf or pprof
	Samples int     // samples (perf) or milliseconds of CPU (pprof)
	Buckets []share // what the CPU was spent on, largest first
	Leaves  []share // the hottest functions (self time)
}

type share struct {
	Name string
	Pct  float64
}

// start begins sampling pid and returns the function that stops and
// summarises it (nil when no profile could be taken).
func (p *profiler) start(pid int) func() *profile {
	none := func() *profile { return nil }
	if p == nil {
		return none
	}
	p.seq++
	base := filepath.Join(p.dir, fmt.Sprintf("load%02d", p.seq))
	if pid == selfPID {
		f, err := os.Create(base + ".pprof")
		if err != nil || pprof.StartCPUProfile(f) != nil {
			return none
		}
		return func() *profile {
			pprof.StopCPUProfile()
			f.Close()
			out, err := exec.Command("go", "tool", "pprof", "-traces", f.Name()).Output()
			if err != nil {
				return nil
			}
			return summarise("pprof", parsePprofTraces(out))
		}
	}
	if !p.perf {
		return none
	}
	cmd := exec.Command("perf", "record", "-q", "-g", "-F", "499", "-p", strconv.Itoa(pid), "-o", base+".perf.data")
	if err := cmd.Start(); err != nil {
		return none
	}
	time.Sleep(100 * time.Millisecond) // perf attaches
	return func() *profile {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		out, err := exec.Command("perf", "script", "-i", base+".perf.data", "-F", "ip,sym,dso").Output()
		if err != nil {
			return nil
		}
		return summarise("perf", parsePerfScript(out))
	}
}

// sample is one stack, leaf first.
type sample struct {
	weight float64
	frames []string
	kernel bool // the leaf is in the kernel
}

// parsePerfScript reads `perf script -F ip,sym,dso`: a blank line between
// samples, one "addr symbol (dso)" line per frame.
func parsePerfScript(out []byte) []sample {
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			cur = nil
			continue
		}
		if cur == nil {
			samples = append(samples, sample{weight: 1})
			cur = &samples[len(samples)-1]
		}
		_, rest, _ := strings.Cut(line, " ") // the address
		sym, dso := rest, ""
		if i := strings.LastIndex(rest, " ("); i >= 0 {
			sym, dso = rest[:i], rest[i+2:]
		}
		if len(cur.frames) == 0 && strings.Contains(dso, "kernel") {
			cur.kernel = true
		}
		cur.frames = append(cur.frames, sym)
	}
	return samples
}

// parsePprofTraces reads `go tool pprof -traces`: samples separated by
// dashed lines, the first frame after the sample's CPU time.
func parsePprofTraces(out []byte) []sample {
	var samples []sample
	var cur *sample
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----") {
			cur = nil
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, " ") {
			continue
		}
		if cur == nil {
			d, err := time.ParseDuration(f[0])
			if err != nil || len(f) < 2 {
				continue
			}
			samples = append(samples, sample{weight: float64(d) / float64(time.Millisecond)})
			cur = &samples[len(samples)-1]
			f = f[1:]
		}
		cur.frames = append(cur.frames, f[0])
	}
	return samples
}

// buckets say what a sample was spent on: the first rule any frame of the
// stack matches wins, so the order is a priority (fsync inside SQLite is
// fsync; an allocation inside SQLite is SQLite).
var buckets = []struct{ name, match string }{
	{"GC (background marking)", "runtime.gcBgMarkWorker"},
	{"fsync (durable commit)", "internal/poll.(*FD).Fsync syscall.Fsync do_fsync vfs_fsync"},
	{"goroutine stack growth", "runtime.newstack runtime.copystack"},
	{"RSA sign/verify", "crypto/rsa. crypto/internal/fips140/rsa."},
	{"other crypto (SHA-256, AES-GCM)", "crypto/"},
	{"SQLite (modernc)", "modernc.org/"},
	{"database/sql", "database/sql."},
	{"pgx (PostgreSQL driver, its network I/O included)", "github.com/jackc/"},
	{"logging (log/slog)", "log/slog."},
	{"metrics (Prometheus)", "github.com/prometheus/"},
	{"encoding/json", "encoding/json."},
	{"grpc-gateway and protojson", "github.com/grpc-ecosystem/ google.golang.org/protobuf/encoding/protojson"},
	{"protobuf", "google.golang.org/protobuf/"},
	{"network syscalls (read/write)", "internal/poll.(*FD).Read internal/poll.(*FD).Write internal/poll.(*FD).Accept internal/poll.(*FD).Writev"},
	{"gRPC and HTTP/2 framing", "google.golang.org/grpc golang.org/x/net/http2 net/http.(*http2"},
	{"net/http", "net/http."},
	{"simulator (bench process only)", "github.com/papayd/papayd/internal/wechat/sandbox."},
	{"papayd code", "github.com/papayd/"},
	{"wechatpay-go SDK", "github.com/wechatpay-apiv3/"},
	{"allocation (elsewhere)", "runtime.mallocgc"},
	{"scheduler, timers, netpoll, futex", "runtime.schedule runtime.findRunnable runtime.park_m runtime.mcall " +
		"runtime.futex runtime.netpoll runtime.stopm runtime.notesleep runtime.wakep runtime.startm runtime.ready " +
		"runtime.goready runtime.sysmon runtime.mstart runtime.checkTimers runtime.timerproc runtime.gopark runtime.usleep"},
}

func bucketOf(s sample) string {
	for _, b := range buckets {
		for _, f := range s.frames {
			for m := range strings.FieldsSeq(b.match) {
				if strings.HasPrefix(f, m) {
					return b.name
				}
			}
		}
	}
	if s.kernel {
		return "kernel (other)"
	}
	return "other"
}

// summarise groups samples by bucket and by leaf function.
func summarise(source string, samples []sample) *profile {
	var total float64
	byBucket, byLeaf := map[string]float64{}, map[string]float64{}
	for _, s := range samples {
		if len(s.frames) == 0 {
			continue
		}
		total += s.weight
		byBucket[bucketOf(s)] += s.weight
		byLeaf[s.frames[0]] += s.weight
	}
	if total == 0 {
		return nil
	}
	pr := &profile{Source: source, Samples: int(total), Buckets: ranked(byBucket, total, 0), Leaves: ranked(byLeaf, total, 8)}
	return pr
}

// ranked turns m into shares of total, largest first (at most n; 0: all).
func ranked(m map[string]float64, total float64, n int) []share {
	out := make([]share, 0, len(m))
	for k, v := range m {
		out = append(out, share{Name: k, Pct: 100 * v / total})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pct > out[j].Pct })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// topBuckets formats the first n buckets as "name 34%, ...".
func (p *profile) topBuckets(n int) string {
	if p == nil {
		return "(no profile)"
	}
	var parts []string
	for i, c := range p.Buckets {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", c.Name, c.Pct))
	}
	return strings.Join(parts, ", ")
}
