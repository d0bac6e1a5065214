package hostile

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// raw sends one request to addr with the given headers and body and
// returns the status (0 when the connection failed).
func raw(method, addr, path string, header http.Header, body io.Reader, host string) int {
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		return 0
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if host != "" {
		req.Host = host
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode
}

func chargeJSON(no, contractID string, total string) string {
	return fmt.Sprintf(`{"out_trade_no":%q,"contract_id":%q,"amount":{"total":%s,"currency":"HKD"},"description":"hostile"}`,
		no, contractID, total)
}

// chargeExists reports whether papayd recorded out_trade_no.
func (p *papayd) chargeExists(no string) bool {
	return p.call("GET", "/v1/charges/"+no, nil, nil) == http.StatusOK
}

var (
	contractOnce sync.Once
	contractID   string
)

// contract is a SIGNED agreement of p, made once.
func (p *papayd) contract() string {
	contractOnce.Do(func() { contractID = p.signed("oHostile") })
	return contractID
}

var serverProbes = []probe{
	{"csrf: text/plain charge", func(t *testing.T, p *papayd) (bool, string) {
		st := raw("POST", p.http, "/v1/charges", http.Header{"Content-Type": {"text/plain"}},
			strings.NewReader(chargeJSON("CSRF-1", p.contract(), "100")), "")
		return st < 300 || p.chargeExists("CSRF-1"), fmt.Sprintf("status %d", st)
	}},
	{"csrf: foreign Origin", func(t *testing.T, p *papayd) (bool, string) {
		st := raw("POST", p.http, "/v1/charges", http.Header{"Content-Type": {"application/json"}, "Origin": {"http://attacker.example"}},
			strings.NewReader(chargeJSON("CSRF-2", p.contract(), "100")), "")
		return st < 300 || p.chargeExists("CSRF-2"), fmt.Sprintf("status %d", st)
	}},
	{"dns rebinding: foreign Host", func(t *testing.T, p *papayd) (bool, string) {
		st := raw("POST", p.http, "/v1/charges", http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(chargeJSON("CSRF-3", p.contract(), "100")), "attacker.example")
		return st < 300 || p.chargeExists("CSRF-3"), fmt.Sprintf("status %d", st)
	}},
	{"csrf: text/plain terminate", func(t *testing.T, p *papayd) (bool, string) {
		id := p.signed("oHostile-terminate")
		st := raw("POST", p.http, "/v1/agreements/"+id+":terminate", http.Header{"Content-Type": {"text/plain"}},
			strings.NewReader(`{"termination_note":"csrf"}`), "attacker.example")
		var a struct {
			Agreement struct{ State string } `json:"agreement"`
		}
		p.call("GET", "/v1/agreements/"+id, nil, &a)
		return a.Agreement.State == "AGREEMENT_STATE_TERMINATED", fmt.Sprintf("status %d, agreement %s", st, a.Agreement.State)
	}},
	{"100 MB body, 8 at once", func(t *testing.T, p *papayd) (bool, string) {
		var wg sync.WaitGroup
		var worst atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := io.MultiReader(strings.NewReader(`{"out_trade_no":"`), io.LimitReader(zeros{}, 100<<20))
				if st := raw("POST", p.http, "/v1/charges", http.Header{"Content-Type": {"application/json"}}, body, ""); st != http.StatusRequestEntityTooLarge {
					worst.Store(int64(st))
				}
			}()
		}
		wg.Wait()
		rss := p.peakRSS()
		return worst.Load() != 0 || rss > 300<<20, fmt.Sprintf("a status other than 413: %d; peak RSS %d MiB", worst.Load(), rss>>20)
	}},
	{"gRPC message of 2 MiB", func(t *testing.T, p *papayd) (bool, string) {
		conn := p.dial(t)
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		_, err := papayv1.NewChargeServiceClient(conn).CreateCharge(ctx, &papayv1.CreateChargeRequest{
			OutTradeNo: "BIG-1", ContractId: p.contract(), Description: strings.Repeat("x", 2<<20),
			Amount: &papayv1.Amount{Total: 100, Currency: "HKD"}})
		return status.Code(err) != codes.ResourceExhausted, fmt.Sprintf("code %v", status.Code(err))
	}},
	{"malformed gRPC bytes", func(t *testing.T, p *papayd) (bool, string) {
		conn := p.dial(t)
		ctx, cancel := withTimeout(10 * time.Second)
		defer cancel()
		var out []byte
		err := conn.Invoke(ctx, "/papay.v1.ChargeService/GetCharge", []byte{0xff, 0xff, 0xff, 0xff}, &out, grpc.ForceCodecV2(rawCodec{}))
		return status.Code(err) != codes.InvalidArgument, fmt.Sprintf("code %v", status.Code(err))
	}},
	{"REST DELETE on a known path", func(t *testing.T, p *papayd) (bool, string) {
		st := raw("DELETE", p.http, "/v1/charges/ANY", nil, nil, "")
		return st != http.StatusMethodNotAllowed, fmt.Sprintf("status %d", st)
	}},
	{"slow body", func(t *testing.T, p *papayd) (bool, string) {
		c, err := net.Dial("tcp", p.http)
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/charges HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", p.http)
		start := time.Now()
		// One byte a second; the read timeout is 2s. Meanwhile others are served.
		closed := make(chan time.Duration, 1)
		go func() {
			_, _ = io.Copy(io.Discard, c)
			closed <- time.Since(start)
		}()
		served := p.call("GET", "/healthz", nil, nil) == http.StatusOK
		for range 10 {
			select {
			case d := <-closed:
				return !served, fmt.Sprintf("cut off after %v; others served: %v", d.Round(100*time.Millisecond), served)
			case <-time.After(time.Second):
				_, _ = c.Write([]byte(" "))
			}
		}
		return true, "still held after 10s"
	}},
	{"log flood: 2000 forged callbacks with 48 KiB headers", func(t *testing.T, p *papayd) (bool, string) {
		before := p.logBytes()
		// Under the 64 KiB header limit, so the callback handler sees them.
		big := strings.Repeat("S", 48<<10)
		addr := p.notify
		if addr == "" {
			addr = p.http
		}
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					raw("POST", addr, "/wechatpay/notify", http.Header{
						"Content-Type": {"application/json"}, "Wechatpay-Serial": {big}, "Wechatpay-Signature": {"AAAA"},
						"Wechatpay-Timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "Wechatpay-Nonce": {"n"},
					}, strings.NewReader(`{"id":"forged"}`), "")
				}
			}()
		}
		for i := range 2000 {
			work <- i
		}
		close(work)
		wg.Wait()
		grew := p.logBytes() - before
		return grew >= 1<<20, fmt.Sprintf("log grew %d bytes", grew)
	}},
	{"absurd amount", func(t *testing.T, p *papayd) (bool, string) {
		st := p.call("POST", "/v1/charges", jsonRaw(chargeJSON("HUGE-1", p.contract(), "9223372036854775807")), nil)
		return st < 300 || p.chargeExists("HUGE-1"), fmt.Sprintf("status %d", st)
	}},
	{"world-readable files", func(t *testing.T, p *papayd) (bool, string) {
		var open []string
		for _, f := range []string{"", "papayd.db", "papayd.db-wal", "papayd.db-shm"} {
			fi, err := os.Stat(filepath.Join(p.dataDir, f))
			if err == nil && fi.Mode().Perm()&0o077 != 0 {
				open = append(open, fmt.Sprintf("%s %v", f, fi.Mode().Perm()))
			}
		}
		return len(open) > 0, fmt.Sprintf("readable by others: %v", open)
	}},
	{"refresh fan-out: 300 concurrent refreshes", func(t *testing.T, p *papayd) (bool, string) {
		if st := p.call("POST", "/v1/charges", jsonRaw(chargeJSON("FANOUT-1", p.contract(), "100")), nil); st != 200 {
			return false, fmt.Sprintf("setup charge: %d", st)
		}
		before := p.orderQueries()
		start := time.Now()
		var wg sync.WaitGroup
		for range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				raw("GET", p.http, "/v1/charges/FANOUT-1?refresh=true", nil, nil, "")
			}()
		}
		wg.Wait()
		calls := p.orderQueries() - before
		// The limit: a burst of 5, then 10 a second (the suite's settings).
		bound := 5 + int(10*time.Since(start).Seconds()) + 1
		return calls > bound, fmt.Sprintf("%d outbound order queries for 300 refreshes (the limit allows %d)", calls, bound)
	}},
	{"forged callbacks blind the certificate refresh", func(t *testing.T, p *papayd) (bool, string) {
		if st := p.call("POST", "/sandbox/v1/platform:rotate", map[string]any{}, nil); st != 200 {
			return false, fmt.Sprintf("rotate: %d", st)
		}
		addr := p.notify
		if addr == "" {
			addr = p.http
		}
		// Forgers naming unknown serials hang up after 300 ms.
		for range 20 {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			req, _ := http.NewRequest("POST", "http://"+addr+"/wechatpay/notify", strings.NewReader(`{"id":"forged"}`))
			req.Header.Set("Wechatpay-Serial", strings.ToUpper(hex.EncodeToString(b)))
			req.Header.Set("Wechatpay-Signature", "AAAA")
			req.Header.Set("Wechatpay-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
			req.Header.Set("Wechatpay-Nonce", "n")
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
				resp.Body.Close()
			}
			cancel()
		}
		// A real call now meets the new certificate.
		st := p.call("POST", "/v1/agreements:presign", map[string]any{"plan_id": 4001, "openid": "oAfterRotation"}, nil)
		return st != http.StatusOK, fmt.Sprintf("presign after the rotation: %d", st)
	}},
	{"notify listener serves only callbacks", func(t *testing.T, p *papayd) (bool, string) {
		if p.notify == "" {
			return true, "no separate notify listener"
		}
		var served []string
		for _, path := range []string{"/v1/charges/ANY", "/metrics", "/openapi.json", "/sandbox/v1/contracts", "/healthz"} {
			if st := raw("GET", p.notify, path, nil, nil, ""); st != http.StatusNotFound {
				served = append(served, fmt.Sprintf("%s %d", path, st))
			}
		}
		return len(served) > 0, fmt.Sprintf("served on the notify port: %v", served)
	}},
}

// orderQueries sums papayd_wechatpay_calls_total of the order queries.
func (p *papayd) orderQueries() int {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	re := regexp.MustCompile(`^papayd_wechatpay_calls_total\{[^}]*endpoint="GET /v3/global/papay/transactions/[^"]*"[^}]*\} (\d+)`)
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.Atoi(m[1])
			n += v
		}
	}
	return n
}

func (p *papayd) dial(t *testing.T) *grpc.ClientConn {
	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawCodec sends bytes as they are, and keeps the answer's.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// zeros reads as endless 'a's.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'a'
	}
	return len(b), nil
}

// jsonRaw is a JSON body given as text, for call.
type jsonRaw string

func (j jsonRaw) MarshalJSON() ([]byte, error) { return []byte(j), nil }
