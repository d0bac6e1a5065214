package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// buildPapayd compiles ./cmd/papayd into dir and returns the binary's path.
func buildPapayd(dir string) (string, error) {
	bin := filepath.Join(dir, "papayd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/papayd: %v\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// papayd is one papayd process in live mode against the bench's simulator.
type papayd struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	// adminAddr serves /metrics.
	adminAddr string
	dataDir   string
	log       *os.File
	conn      *grpc.ClientConn
	exited    <-chan error
	once      sync.Once
	stopErr   error
}

// startPapayd starts bin on dataDir with env (the live-mode settings) on
// fresh loopback ports, its notify URL its own /wechatpay/notify, waits
// until /healthz answers and dials gRPC.
func startPapayd(bin, dataDir string, env map[string]string) (*papayd, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "papayd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PAPAYD_GRPC_ADDR="+grpcAddr, "PAPAYD_HTTP_ADDR="+httpAddr, "PAPAYD_ADMIN_ADDR="+adminAddr, "PAPAYD_DATA_DIR="+dataDir,
		"PAPAYD_NOTIFY_URL=http://"+httpAddr+"/wechatpay/notify")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// papayd does not outlive the bench, should the bench die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &papayd{cmd: cmd, grpcAddr: grpcAddr, httpAddr: httpAddr, adminAddr: adminAddr, dataDir: dataDir, log: logFile}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			logFile.Close()
			return nil, fmt.Errorf("papayd exited at start (%v); its log ends:\n%s", err, logTail(logFile.Name()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			logFile.Close()
			return nil, fmt.Errorf("papayd did not become healthy; its log ends:\n%s", logTail(logFile.Name()))
		}
	}
	p.exited = exited // Wait is already running: stop waits on exited
	if p.conn, err = grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// logTail is the end of papayd's log.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// pid is the process id of papayd.
func (p *papayd) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits for a graceful shutdown (SIGKILL after 20
// s). Calling it again returns the first call's result.
func (p *papayd) stop() error {
	p.once.Do(func() {
		if p.conn != nil {
			_ = p.conn.Close()
		}
		defer p.log.Close()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case p.stopErr = <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = errors.New("papayd did not stop within 20 s; killed")
		}
	})
	return p.stopErr
}

// resetPeakRSS resets VmHWM of pid (writing 5 to clear_refs), so that the
// next peak read is the peak of what follows. It reports whether it could.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// procStatus returns VmHWM and VmRSS of pid in KiB.
func procStatus(pid int) (hwm, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "VmRSS":
			rss = n
		}
	}
	return hwm, rss, sc.Err()
}

// cpuTime returns the user+system CPU time pid used so far.
func cpuTime(pid int) time.Duration {
	st, _ := readStat(pid)
	return st.own
}

// procStat is what the bench reads of /proc/<pid>/stat.
type procStat struct {
	ppid     int
	own      time.Duration // utime + stime
	children time.Duration // cutime + cstime: children it waited for
}

// readStat reads /proc/<pid>/stat; ok is false when pid is gone.
func readStat(pid int) (st procStat, ok bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, false
	}
	// The command name is in parentheses and may hold spaces: split after it.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	// After the name: state is field 3 of stat, ppid 4, utime 14, stime
	// 15, cutime 16, cstime 17.
	if len(f) < 15 {
		return st, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	const clkTck = 100 // USER_HZ on Linux
	tick := func(t int64) time.Duration { return time.Duration(t) * time.Second / clkTck }
	st.ppid = int(n(1))
	st.own, st.children = tick(n(11)+n(12)), tick(n(13)+n(14))
	return st, true
}

// scrape reads the values of the named series (name and labels exactly as
// papayd's /metrics writes them) from papayd's /metrics; a series it
// cannot read is 0.
func scrape(p *papayd, series ...string) []float64 {
	out := make([]float64, len(series))
	resp, err := http.Get("http://" + p.adminAddr + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, s := range series {
			if name == s {
				out[i], _ = strconv.ParseFloat(value, 64)
			}
		}
	}
	return out
}
