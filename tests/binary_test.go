package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestBinaryServesAndStopsOnSIGTERM builds cmd/papayd, runs it the way the
// README does (sandbox mode, no configuration but ports and a data dir),
// checks that it serves, and that SIGTERM stops it cleanly and quickly.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "papayd")
	build := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PAPAYD_GRPC_ADDR=127.0.0.1:0", "PAPAYD_HTTP_ADDR=127.0.0.1:0", "PAPAYD_ADMIN_ADDR=127.0.0.1:0", "PAPAYD_DATA_DIR="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	serving := regexp.MustCompile(`msg="papayd serving".* http=(http://[0-9.:]+)`)
	base := make(chan string, 1)
	go func() { // reads the log to the end, so papayd never blocks on it
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := serving.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-base:
	case <-time.After(30 * time.Second):
		t.Fatal("papayd did not report that it is serving")
	}
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || h["status"] != "SERVING" {
		t.Fatalf("/healthz: HTTP %d %v", resp.StatusCode, h)
	}
	for _, f := range []string{"papayd.db", "sandbox/merchant_key.pem", "sandbox/platform_cert.pem", "sandbox/apiv3_key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("sandbox mode did not create %s: %v", f, err)
		}
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("papayd exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		t.Fatal("papayd did not stop within 15s of SIGTERM")
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
