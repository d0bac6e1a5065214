package tests

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// readmeWebhooks is the README section of the webhook walkthrough.
const readmeWebhooks = "## Webhooks"

// TestREADMEWebhookWalkthrough runs the README's webhook walkthrough as a
// newcomer would: its receiver.py (on a free port instead of 9999) under
// python3, its curl commands against a sandbox papayd, the signing
// walkthrough in between; the receiver must print agreement.signed with a
// signature that the Standard Webhooks library verifies with the secret
// the README says to keep.
func TestREADMEWebhookWalkthrough(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3, which the README's receiver needs: %v", err)
	}
	raw, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	_, port, _ := net.SplitHostPort(freePort(t))
	receiver, err := readmeFencedBlock(readme, readmeWebhooks, "```python")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(receiver, "9999") {
		t.Fatal("README.md: the receiver no longer listens on 9999; update this test")
	}
	script := filepath.Join(t.TempDir(), "receiver.py")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(receiver, "9999", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := startReceiver(t, python, script, port)

	vars := map[string]string{}
	signing, err := readmeCommands(readme, readmeWalkthroughs[0], vars)
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := readmeCommands(readme, readmeWebhooks, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 4 {
		t.Fatalf("README.md: the webhook walkthrough has %d curl commands, want register, deliveries, redeliver, delete", len(hooks))
	}
	p := startWith(t, "", nil)
	host := strings.TrimPrefix(p.base, "http://")
	vals := map[string]string{}
	run := func(c readmeCommand) any {
		t.Helper()
		for i, w := range c.words {
			c.words[i] = strings.ReplaceAll(w, "127.0.0.1:9999", "127.0.0.1:"+port)
		}
		req, err := readmeRequest(c, host, vals)
		if err != nil {
			t.Fatalf("README.md:%d: %v", c.line, err)
		}
		body, err := readmeSend(p, req, c.expect)
		if err != nil {
			t.Fatalf("README.md:%d: %s %s: %v", c.line, req.method, req.url, err)
		}
		readmeCollect(body, vals)
		return body
	}

	// 1. Register: keep the secret and the endpoint's id.
	reg, _ := run(hooks[0]).(map[string]any)
	secret, _ := reg["secret"].(string)
	ep, _ := reg["endpoint"].(map[string]any)
	vals["webhook_endpoint_id"], _ = ep["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || vals["webhook_endpoint_id"] == "" {
		t.Fatalf("register answered %v", reg)
	}
	// 2. Sign an agreement: the signing walkthrough, all of it.
	for _, c := range signing {
		run(c)
	}
	var signed receivedHook
	eventually(t, "the receiver prints agreement.signed", func() bool {
		for _, h := range out.hooks() {
			if strings.Contains(h.body, `"type":"agreement.signed"`) {
				signed = h
				return true
			}
		}
		return false
	})
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte(signed.body), signed.header); err != nil {
		t.Fatalf("the printed agreement.signed does not verify with the secret: %v\n%s", err, out.text())
	}
	vals["event_id"] = signed.header.Get("webhook-id")
	// 3. Deliveries, redeliver; the redelivery arrives before the endpoint
	// is deleted (a newcomer types the next command later than this test).
	run(hooks[1])
	run(hooks[2])
	eventually(t, "the redelivery reaches the receiver", func() bool {
		n := 0
		for _, h := range out.hooks() {
			if h.header.Get("webhook-id") == vals["event_id"] {
				n++
			}
		}
		return n == 2
	})
	run(hooks[3])
}

// readmeCommands returns the curl commands of the ```sh blocks of section
// title (other commands, such as NAME=value, only set vars).
func readmeCommands(readme, title string, vars map[string]string) ([]readmeCommand, error) {
	blocks, err := readmeShellBlocks(readme, title)
	if err != nil {
		return nil, err
	}
	var cmds []readmeCommand
	for _, b := range blocks {
		cs, err := readmeParseShell(b.text, b.line, vars)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if len(c.words) > 0 && c.words[0] == "curl" {
				cmds = append(cmds, c)
			}
		}
	}
	return cmds, nil
}

// readmeFencedBlock returns the first block fenced by fence (such as
// "```python") in section title.
func readmeFencedBlock(readme, title, fence string) (string, error) {
	_, sec, ok := strings.Cut(readme, "\n"+title+"\n")
	if !ok {
		return "", fmt.Errorf("README.md has no section %q", title)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	_, rest, ok := strings.Cut(sec, "\n"+fence+"\n")
	if !ok {
		return "", fmt.Errorf("README.md: section %q has no %s block", title, fence)
	}
	body, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		return "", fmt.Errorf("README.md: section %q: unclosed %s block", title, fence)
	}
	return body + "\n", nil
}

// receiverOutput is what the README's receiver printed.
type receiverOutput struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (o *receiverOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *receiverOutput) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// receivedHook is one request as the receiver printed it: its headers
// (Python's "Name: value" lines), a blank line, then the body on one line.
type receivedHook struct {
	header http.Header
	body   string
}

func (o *receiverOutput) hooks() []receivedHook {
	var hs []receivedHook
	cur := receivedHook{header: http.Header{}}
	inHeader := true
	sc := bufio.NewScanner(strings.NewReader(o.text()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case inHeader && l == "":
			inHeader = false
		case inHeader:
			if k, v, ok := strings.Cut(l, ":"); ok {
				cur.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		case strings.TrimSpace(l) == "":
		default:
			cur.body = strings.TrimSpace(l)
			hs = append(hs, cur)
			cur, inHeader = receivedHook{header: http.Header{}}, true
		}
	}
	return hs
}

// startReceiver runs the receiver script until the test ends and waits
// until it listens on port.
func startReceiver(t *testing.T, python, script, port string) *receiverOutput {
	t.Helper()
	out := &receiverOutput{}
	cmd := exec.Command(python, script)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			_ = c.Close()
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the README's receiver does not listen on %s: %v\n%s", port, err, out.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
