package tests

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "modernc.org/sqlite"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/app"
)

// papayd is one running papayd under test.
type papayd struct {
	t       *testing.T
	app     *app.App
	dataDir string
	cancel  context.CancelFunc
	done    chan error

	agreements papayv1.AgreementServiceClient
	charges    papayv1.ChargeServiceClient
	conn       *grpc.ClientConn
	http       *http.Client
	base       string // http://127.0.0.1:PORT
	log        *testLogWriter
}

// start runs papayd in sandbox mode on :0 ports with dataDir ("" = fresh)
// and stops it when the test ends.
func start(t *testing.T, dataDir string) *papayd {
	t.Helper()
	return startWith(t, dataDir, nil)
}

// startWith is start with more PAPAYD_ settings.
func startWith(t *testing.T, dataDir string, settings map[string]string) *papayd {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	env := map[string]string{
		"PAPAYD_GRPC_ADDR":          "127.0.0.1:0",
		"PAPAYD_HTTP_ADDR":          "127.0.0.1:0",
		"PAPAYD_ADMIN_ADDR":         "127.0.0.1:0",
		"PAPAYD_DATA_DIR":           dataDir,
		"PAPAYD_SANDBOX_TIME_SCALE": "0.0001",
		"PAPAYD_LOG_LEVEL":          "debug",
	}
	for k, v := range settings {
		env[k] = v
	}
	cfg, err := app.ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logw := &testLogWriter{t: t}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &papayd{t: t, app: a, dataDir: dataDir, cancel: cancel, done: make(chan error, 1), log: logw,
		http: &http.Client{Timeout: 10 * time.Second}, base: "http://" + a.HTTPAddr()}
	go func() { p.done <- a.Run(ctx) }()
	p.conn, err = grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.agreements = papayv1.NewAgreementServiceClient(p.conn)
	p.charges = papayv1.NewChargeServiceClient(p.conn)
	t.Cleanup(func() { p.stop(); logw.close() })
	return p
}

// stop shuts papayd down and waits for it.
func (p *papayd) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	_ = p.conn.Close()
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("papayd.Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		p.t.Error("papayd did not stop within 15s")
	}
}

// testLogWriter keeps papayd's log, and sends it to t.Log until the test
// ends when -v is given.
type testLogWriter struct {
	t      *testing.T
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.closed && testing.Verbose() {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// String is everything papayd logged so far.
func (w *testLogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// do sends a JSON request to papayd's HTTP port and decodes the answer into
// out (if not nil). It returns the status code.
func (p *papayd) do(method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// postNotification posts a callback to /wechatpay/notify and returns the
// status and the decoded answer.
func (p *papayd) postNotification(h http.Header, body []byte) (int, map[string]string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.base+"/wechatpay/notify", bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// notification is one processed-notification record.
type notification struct {
	ID, EventType, Outcome, ContractID, OutContractCode, OutTradeNo string
}

// notifications reads papayd's processed-notification records through a
// separate read-only connection, oldest first.
func (p *papayd) notifications() []notification {
	p.t.Helper()
	dbh, err := sql.Open("sqlite", "file:"+filepath.Join(p.dataDir, "papayd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		p.t.Fatal(err)
	}
	defer dbh.Close()
	rows, err := dbh.Query("SELECT id, event_type, outcome, contract_id, out_contract_code, out_trade_no FROM notifications ORDER BY receive_time, id")
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var out []notification
	for rows.Next() {
		var n notification
		if err := rows.Scan(&n.ID, &n.EventType, &n.Outcome, &n.ContractID, &n.OutContractCode, &n.OutTradeNo); err != nil {
			p.t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// wechatCall is one audit row of a call to WeChat Pay.
type wechatCall struct {
	Method, Path, Code, RequestID string
	Status                        int
	Duration                      int64
}

// wechatCalls reads papayd's audit of its WeChat Pay calls, oldest first.
func (p *papayd) wechatCalls() []wechatCall {
	p.t.Helper()
	dbh, err := sql.Open("sqlite", "file:"+filepath.Join(p.dataDir, "papayd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		p.t.Fatal(err)
	}
	defer dbh.Close()
	rows, err := dbh.Query("SELECT method, path, code, request_id, http_status, duration_ns FROM wechat_calls ORDER BY id")
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var out []wechatCall
	for rows.Next() {
		var c wechatCall
		if err := rows.Scan(&c.Method, &c.Path, &c.Code, &c.RequestID, &c.Status, &c.Duration); err != nil {
			p.t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// notificationsFor returns the records about one out_contract_code.
func (p *papayd) notificationsFor(outContractCode string) []notification {
	var out []notification
	for _, n := range p.notifications() {
		if n.OutContractCode == outContractCode {
			out = append(out, n)
		}
	}
	return out
}

// userSigns plays the WeChat user agreeing to a signing session and returns
// the new contract id.
func (p *papayd) userSigns(sessionID string, body any) string {
	p.t.Helper()
	var out struct {
		ContractID string `json:"contract_id"`
	}
	if code := p.do(http.MethodPost, "/sandbox/v1/sessions/"+sessionID+":sign", body, &out); code != http.StatusOK {
		p.t.Fatalf("sandbox sign %s: HTTP %d", sessionID, code)
	}
	if out.ContractID == "" {
		p.t.Fatal("sandbox sign answered no contract_id")
	}
	return out.ContractID
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timestampIn is now + d as a proto timestamp.
func timestampIn(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(time.Now().Add(d)) }
