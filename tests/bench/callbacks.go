package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Figure 1: callback ingestion. The events are TRANSACTION.SUCCESS for
// charges papayd holds as PROCESSING (a USERPAYING deduction settling:
// the money path, and the most frequent notification of an auto-debit
// merchant), seeded into the database before papayd starts. Each applied
// notification moves its charge to SUCCEEDED and records the notification
// in the same transaction. 20% of the stream are duplicates: the same id
// and body re-signed with a fresh timestamp and nonce, as WeChat's retries
// are, placed shortly after the original so that some race it.

// notice is one pre-built notification as WeChat would POST it.
type notice struct {
	id     string
	header http.Header
	body   []byte
	dup    bool
}

// callbackStream is the pre-built stream of figure 1.
type callbackStream struct {
	notices []notice
	unique  int
	built   time.Duration // how long signing them took
}

// buildCallbacks signs unique TRANSACTION.SUCCESS notifications for the
// open charges [0, unique) plus unique/4 re-signed duplicates (20% of the
// stream), and orders them.
func buildCallbacks(sb *sandbox.Sandbox, creds *sandbox.Credentials, unique, agreements, conc int) (*callbackStream, error) {
	start := time.Now()
	dups := unique / 4
	rng := mrand.New(mrand.NewPCG(20261201, 5))
	dupOf := rng.Perm(unique)[:dups]
	type keyed struct {
		key float64
		n   notice
	}
	items := make([]keyed, unique+dups)
	stamp := time.Now().In(chinaTime).Format("20060102150405")
	var firstErr error
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= unique+dups {
					return
				}
				var n notice
				var err error
				key := float64(k)
				if k < unique {
					n.id = fmt.Sprintf("EV-%s%08d", stamp, k)
					n.header, n.body, err = sb.BuildNotification(sandbox.EventTransactionSuccess, n.id, successResource(creds, k, agreements))
				} else {
					// Re-signed below, once the original's body exists.
					orig := dupOf[k-unique]
					key = float64(orig) + 1 + float64(rng2(k).IntN(8*conc)) + 0.5
					n = notice{id: fmt.Sprintf("EV-%s%08d", stamp, orig), dup: true}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				items[k] = keyed{key: key, n: n}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// The duplicates: the original's exact body, signed anew.
	next.Store(0)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				d := int(next.Add(1) - 1)
				if d >= dups {
					return
				}
				it := &items[unique+d]
				it.n.body = items[dupOf[d]].n.body
				h, err := sandbox.SignatureHeaders(creds.PlatformKey, creds.PlatformSerial, time.Now().Unix(), nonce(), it.n.body)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				it.n.header = h
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].key < items[j].key })
	s := &callbackStream{unique: unique, notices: make([]notice, len(items))}
	for i, it := range items {
		s.notices[i] = it.n
	}
	s.built = time.Since(start)
	return s, nil
}

func rng2(k int) *mrand.Rand { return mrand.New(mrand.NewPCG(uint64(k), 11)) }

// nonce is a 32-character signing nonce.
func nonce() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 32)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// successResource is WeChat's transaction object settling open charge k.
func successResource(creds *sandbox.Credentials, k, agreements int) sandbox.TransactionResource {
	c := seedCharge(creds, openCharges, k, k%agreements)
	return sandbox.TransactionResource{
		SPMchID: creds.MchID, SubMchID: c.SubMchID, SPAppID: c.SPAppID, SubAppID: c.SubAppID,
		OutTradeNo: c.OutTradeNo, TransactionID: c.TransactionID, ContractID: c.ContractID,
		TradeType: sandbox.TradeTypeAuth, TradeState: sandbox.TradeSuccess, TradeStateDesc: "支付成功",
		BankType: "CFT", SuccessTime: time.Now().In(chinaTime).Format(time.RFC3339),
		MerchantCategoryCode: c.MerchantCategoryCode, Payer: sandbox.TransactionPayer{SPOpenID: c.OpenID},
		Amount: sandbox.TransactionAmount{Total: c.Amount.Total, Currency: c.Amount.Currency,
			PayerTotal: c.Amount.Total, PayerCurrency: c.Amount.Currency,
			ExchangeRate: &sandbox.ExchangeRate{Type: sandbox.ExchangeRateSettlement, Rate: sandbox.RateScale}},
	}
}

// sdkParse is the baseline: the wechatpay-go SDK's own notify handler
// (certificate verifier, AES-GCM, decoding into a typed struct) parsing the
// same stream in-process, as many passes as fit in d (at most 5).
func sdkParse(ctx context.Context, creds *sandbox.Credentials, s *callbackStream, conc int, d time.Duration) (result, error) {
	certs := core.NewCertificateMapWithList([]*x509.Certificate{creds.PlatformCert})
	h, err := notify.NewRSANotifyHandler(string(creds.APIv3Key), verifiers.NewSHA256WithRSAVerifier(certs))
	if err != nil {
		return result{}, err
	}
	n := len(s.notices)
	return runLoad(ctx, "SDK ParseNotifyRequest", conc, 5*n, d, func(ctx context.Context, i int) error {
		nt := s.notices[i%n]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1/wechatpay/notify", bytes.NewReader(nt.body))
		if err != nil {
			return err
		}
		req.Header = nt.header
		var content sandbox.TransactionResource
		if _, err := h.ParseNotifyRequest(ctx, req, &content); err != nil {
			return err
		}
		if content.OutTradeNo == "" {
			return fmt.Errorf("notification %s: no out_trade_no", nt.id)
		}
		return nil
	}), nil
}

// postCallbacks POSTs the stream once, conc at a time, each caller on its
// own keep-alive connection. The requests are serialised before the load
// starts and answers are read with http.ReadResponse: the load generator
// stands in for WeChat's delivery servers, which are not on papayd's
// machine, so it should cost as little of the shared CPU as it can (Go's
// http.Client costs more per call than papayd's verification does).
//
// With several replicas the callers' connections alternate between them,
// as WeChat's deliveries through a load balancer would.
func postCallbacks(ctx context.Context, f fleet, s *callbackStream, conc int, acked []atomic.Bool) result {
	wire := make([][]byte, len(s.notices))
	for i, nt := range s.notices {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /wechatpay/notify HTTP/1.1\r\nHost: papayd\r\nContent-Length: %d\r\n", len(nt.body))
		if err := nt.header.Write(&b); err != nil {
			panic(err) // a bytes.Buffer does not fail
		}
		b.WriteString("\r\n")
		b.Write(nt.body)
		wire[i] = b.Bytes()
	}
	conns := make(chan *rawConn, conc)
	for k := range conc {
		conns <- &rawConn{addr: f.pick(k).httpAddr}
	}
	defer func() {
		for range conc {
			(<-conns).close()
		}
	}()
	// Bounded by the stream, and by 4 minutes: the signatures must still
	// be inside WeChat's 5-minute window.
	return runLoad(ctx, "papayd POST /wechatpay/notify", conc, len(s.notices), 4*time.Minute, func(ctx context.Context, i int) error {
		c := <-conns
		defer func() { conns <- c }()
		status, body, err := c.roundTrip(wire[i])
		if err != nil {
			return fmt.Errorf("notification %s: %w", s.notices[i].id, err)
		}
		if status != http.StatusOK || !bytes.Contains(body, []byte(`"SUCCESS"`)) {
			return fmt.Errorf("notification %s: %d %s", s.notices[i].id, status, bytes.TrimSpace(body))
		}
		acked[i].Store(true)
		return nil
	})
}

// rawConn is one keep-alive HTTP/1.1 connection of postCallbacks.
type rawConn struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
}

// roundTrip writes one serialised request and reads its answer. A request
// is sent at most once: a broken connection is an error (an unanswered
// notification), and the next request dials again.
func (c *rawConn) roundTrip(req []byte) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 4096)
	}
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp, err := func() (*http.Response, error) {
		if _, err := c.conn.Write(req); err != nil {
			return nil, err
		}
		return http.ReadResponse(c.r, nil)
	}()
	if err != nil {
		c.close()
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode, body, err
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// callbackCheck is what the database says after the stream.
type callbackCheck struct {
	Sent, UniqueSent, Acked, UniqueAcked int
	Recorded, Applied, Lost              int
	Settled                              int // open charges now SUCCEEDED
}

// verifyCallbacks reads papayd's notifications table (SQLite's read-only):
// every unique id that papayd acknowledged must be recorded (once: it is
// the primary key), and every settled charge SUCCEEDED.
func verifyCallbacks(d *database, s *callbackStream, acked []atomic.Bool) (callbackCheck, error) {
	var c callbackCheck
	sent := map[string]bool{}
	ackedIDs := map[string]bool{}
	for i, n := range s.notices {
		c.Sent++
		sent[n.id] = true
		if acked[i].Load() {
			c.Acked++
			ackedIDs[n.id] = true
		}
	}
	c.UniqueSent, c.UniqueAcked = len(sent), len(ackedIDs)
	conn, err := d.check()
	if err != nil {
		return c, err
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT id, outcome FROM notifications WHERE event_type = 'TRANSACTION.SUCCESS'`)
	if err != nil {
		return c, err
	}
	recorded := map[string]string{}
	for rows.Next() {
		var id, outcome string
		if err := rows.Scan(&id, &outcome); err != nil {
			rows.Close()
			return c, err
		}
		recorded[id] = outcome
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, err
	}
	for id := range sent {
		if o, ok := recorded[id]; ok {
			c.Recorded++
			if o == "APPLIED" {
				c.Applied++
			}
		}
	}
	for id := range ackedIDs {
		if _, ok := recorded[id]; !ok {
			c.Lost++
		}
	}
	err = conn.QueryRow(`SELECT COUNT(*) FROM charges WHERE out_trade_no LIKE $1 AND state = 'SUCCEEDED'`,
		openCharges+"%").Scan(&c.Settled)
	return c, err
}
