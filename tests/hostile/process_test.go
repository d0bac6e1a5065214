package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// papayd is one papayd process under attack.
type papayd struct {
	t       *testing.T
	cmd     *exec.Cmd
	dataDir string
	logPath string
	http    string // host:port
	grpc    string
	notify  string // host:port of the notify listener, if separate
	admin   string // host:port of the admin listener (/metrics)
	exited  chan error
	stopped bool
}

// build compiles cmd/papayd once per test binary.
var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "papayd-hostile-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "papayd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fileSizeLimit, as a key of a start's env, runs papayd under that
// RLIMIT_FSIZE (bytes), through prlimit: a full disk, as SQLite sees it.
const fileSizeLimit = "hostile.fsize"

// command returns papayd's command with env over a minimal environment.
func command(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	if limit, ok := env[fileSizeLimit]; ok {
		// prlimit sets the limit and then executes papayd in its place.
		cmd = exec.Command("prlimit", append([]string{"--fsize=" + limit, "--", bin}, args...)...)
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		if k != fileSizeLimit {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd
}

// start runs papayd with env (PAPAYD_ settings; ports and data dir are
// filled in when missing) and waits until it is healthy.
func start(t *testing.T, env map[string]string) *papayd {
	t.Helper()
	p := &papayd{t: t, exited: make(chan error, 1)}
	if env == nil {
		env = map[string]string{}
	}
	if env["PAPAYD_DATA_DIR"] == "" {
		env["PAPAYD_DATA_DIR"] = filepath.Join(t.TempDir(), "data")
	}
	if env["PAPAYD_HTTP_ADDR"] == "" {
		env["PAPAYD_HTTP_ADDR"] = freePort(t)
	}
	if env["PAPAYD_GRPC_ADDR"] == "" {
		env["PAPAYD_GRPC_ADDR"] = freePort(t)
	}
	if env["PAPAYD_ADMIN_ADDR"] == "" {
		env["PAPAYD_ADMIN_ADDR"] = freePort(t)
	}
	p.dataDir, p.http, p.grpc, p.notify = env["PAPAYD_DATA_DIR"], env["PAPAYD_HTTP_ADDR"], env["PAPAYD_GRPC_ADDR"], env["PAPAYD_NOTIFY_ADDR"]
	p.admin = env["PAPAYD_ADMIN_ADDR"]
	p.logPath = filepath.Join(t.TempDir(), "papayd.log")
	log, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = command(t, env)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait(); log.Close() }()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			b, _ := os.ReadFile(p.logPath)
			t.Fatalf("papayd exited at start: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("papayd did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether the process still runs (a probe did not crash it).
func (p *papayd) alive() bool {
	select {
	case err := <-p.exited:
		p.exited <- err
		return false
	default:
		return true
	}
}

// peakRSS is the process's peak resident set so far, in bytes (VmHWM).
func (p *papayd) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logBytes is the size of papayd's log so far.
func (p *papayd) logBytes() int64 {
	fi, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (p *papayd) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// call sends a request to papayd's HTTP port with JSON body v (nil: none)
// and decodes a JSON answer into out (if not nil). It returns the status.
func (p *papayd) call(method, path string, v, out any) int {
	p.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			p.t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+p.http+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// signed makes a SIGNED agreement through the REST API and the sandbox's
// control API and returns its contract id.
func (p *papayd) signed(openid string) string {
	p.t.Helper()
	var pre struct {
		SessionID string `json:"session_id"`
	}
	if st := p.call("POST", "/v1/agreements:presign", map[string]any{"plan_id": 4001, "openid": openid}, &pre); st != 200 {
		p.t.Fatalf("presign: %d", st)
	}
	var signed struct {
		ContractID string `json:"contract_id"`
	}
	if st := p.call("POST", "/sandbox/v1/sessions/"+pre.SessionID+":sign", map[string]any{}, &signed); st != 200 {
		p.t.Fatalf("sign: %d", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var a struct {
			Agreement struct {
				State string `json:"state"`
			} `json:"agreement"`
		}
		p.call("GET", "/v1/agreements/"+signed.ContractID, nil, &a)
		if a.Agreement.State == "AGREEMENT_STATE_SIGNED" {
			return signed.ContractID
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("agreement %s never SIGNED", signed.ContractID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitsWith runs papayd with env and expects it to refuse to start: it
// returns its output, and whether it served instead (it is then stopped).
func exitsWith(t *testing.T, env map[string]string, args ...string) (output string, served bool) {
	t.Helper()
	cmd := command(t, env, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return out.String(), false
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), true
	}
}

// withTimeout is a context for one probe.
func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
