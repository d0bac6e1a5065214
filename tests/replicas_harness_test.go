package tests

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// buildPapayd builds cmd/papayd into a temporary directory of t and returns
// the binary's path.
func buildPapayd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "papayd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// roundRobin is the load balancer in front of the replicas' HTTP ports, as
// the Transport of an httputil.ReverseProxy: each request goes to the next
// replica in turn, and to the following one when that replica does not
// answer (it is down). served counts the requests each replica answered.
type roundRobin struct {
	backends  []string // host:port
	next      atomic.Uint64
	served    []atomic.Int64
	transport *http.Transport
}

func newRoundRobin(backends []string) *roundRobin {
	return &roundRobin{backends: backends, served: make([]atomic.Int64, len(backends)),
		transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}}
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	first := rr.next.Add(1)
	var lastErr error
	for i := range rr.backends {
		k := int((first + uint64(i)) % uint64(len(rr.backends)))
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = "http", rr.backends[k], ""
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		resp, err := rr.transport.RoundTrip(out)
		if err == nil {
			rr.served[k].Add(1)
			return resp, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// wxCall is one request the simulator's API served.
type wxCall struct {
	method, path string
	start, end   time.Time
}

// wxRecorder wraps the simulator's API handler and records every request
// it served, with when it began and ended (injected latency included).
type wxRecorder struct {
	h     http.Handler
	mu    sync.Mutex
	calls []wxCall
}

func (w *wxRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.h.ServeHTTP(rw, r)
	w.mu.Lock()
	w.calls = append(w.calls, wxCall{method: r.Method, path: r.URL.Path, start: start, end: time.Now()})
	w.mu.Unlock()
}

// matching returns the calls of method whose path starts with prefix.
func (w *wxRecorder) matching(method, prefix string) []wxCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wxCall
	for _, c := range w.calls {
		if c.method == method && strings.HasPrefix(c.path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// replica is one papayd process of a replicaSet.
type replica struct {
	name string
	grpc string
	proc *soakProcess
	conn *grpc.ClientConn
	log  string // path of its log file
}

func (r *replica) agreements() papayv1.AgreementServiceClient {
	return papayv1.NewAgreementServiceClient(r.conn)
}
func (r *replica) charges() papayv1.ChargeServiceClient {
	return papayv1.NewChargeServiceClient(r.conn)
}
func (r *replica) refunds() papayv1.RefundServiceClient {
	return papayv1.NewRefundServiceClient(r.conn)
}
func (r *replica) events() papayv1.EventServiceClient { return papayv1.NewEventServiceClient(r.conn) }

// replicaSet is papayd run as several processes in live mode on one fresh
// PostgreSQL database, towards one simulator outside them whose
// notifications go through a round-robin proxy in front of them.
type replicaSet struct {
	sb        *sandbox.Sandbox
	wx        *wxRecorder
	lb        *roundRobin
	notifyURL string // the proxy's notify URL
	dbURL     string
	bin       string
	env       []string // the environment every replica shares
	replicas  []*replica
}

// startReplicas starts n replicas (named replica-0, replica-1, ...) with
// settings added to their live configuration, and a simulator whose
// notification retries run timeScale times WeChat's schedule. Each replica
// has its own ports, data directory and log; all are healthy on return and
// killed when t ends.
func startReplicas(t *testing.T, n int, timeScale float64, settings map[string]string) *replicaSet {
	t.Helper()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	rs := &replicaSet{bin: buildPapayd(t)}
	httpAddrs := make([]string, n)
	for i := range httpAddrs {
		httpAddrs[i] = freePort(t)
	}
	rs.lb = newRoundRobin(httpAddrs)
	t.Cleanup(rs.lb.transport.CloseIdleConnections)
	placeholder := &url.URL{Scheme: "http", Host: "replicas"}
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(placeholder) },
		Transport: rs.lb,
	})
	t.Cleanup(proxy.Close)
	rs.notifyURL = proxy.URL + "/wechatpay/notify"
	rs.sb, err = sandbox.New(sandbox.Options{Credentials: creds, TimeScale: timeScale, TerminationNotifyURL: rs.notifyURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.sb.Close)
	rs.wx = &wxRecorder{h: rs.sb.APIHandler()}
	wxURL, wxCA := serveWeChat(t, rs.wx)
	rs.dbURL = pgtest.Shared(t).NewDatabase(context.Background(), t)

	env := liveEnv(t, creds, wxURL, wxCA)
	env["PAPAYD_DATABASE_URL"] = rs.dbURL
	env["PAPAYD_MERCHANT_CATEGORY_CODE"] = "5999"
	delete(env, "PAPAYD_NOTIFY_URL") // soakProcess sets it
	maps.Copy(env, settings)
	for k, v := range env {
		if k != "PAPAYD_GRPC_ADDR" && k != "PAPAYD_HTTP_ADDR" && k != "PAPAYD_DATA_DIR" {
			rs.env = append(rs.env, k+"="+v)
		}
	}
	logs := t.TempDir()
	for i := range n {
		name := "replica-" + strconv.Itoa(i)
		r := &replica{name: name, grpc: freePort(t), log: filepath.Join(logs, name+".log")}
		logFile, err := os.Create(r.log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logFile.Close() })
		procEnv := append(os.Environ(), rs.env...)
		procEnv = append(procEnv, "PAPAYD_REPLICA="+r.name, "PAPAYD_GRPC_ADDR="+r.grpc,
			"PAPAYD_HTTP_ADDR="+httpAddrs[i], "PAPAYD_DATA_DIR="+t.TempDir())
		r.proc = &soakProcess{t: t, bin: rs.bin, env: procEnv, http: httpAddrs[i], log: logFile, notifyURLs: []string{rs.notifyURL}}
		r.conn, err = grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.conn.Close() })
		rs.replicas = append(rs.replicas, r)
	}
	// Registered after the databases' cleanup, so run before it: the
	// replicas are gone when the database is dropped.
	t.Cleanup(func() {
		for _, r := range rs.replicas {
			r.proc.kill()
		}
		if t.Failed() {
			for _, r := range rs.replicas {
				t.Logf("%s log (%s):\n%s", r.name, r.log, logTail(r.log, 6000))
			}
		}
	})
	var wg sync.WaitGroup
	for _, r := range rs.replicas {
		wg.Add(1)
		go func() { defer wg.Done(); r.proc.start() }()
	}
	wg.Wait()
	return rs
}

// balanced is a gRPC connection spreading its calls over every replica
// round robin, skipping those that are down.
func (rs *replicaSet) balanced(t *testing.T) *grpc.ClientConn {
	t.Helper()
	r := manual.NewBuilderWithScheme("replicas")
	var addrs []resolver.Address
	for _, rp := range rs.replicas {
		addrs = append(addrs, resolver.Address{Addr: rp.grpc})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	conn, err := grpc.NewClient("replicas:///papayd", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// logTail is the last n bytes of the file at path.
func logTail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}
