package tests

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// soakDuration is how long the soak drives load; PAPAYD_SOAK_DURATION
// changes it (e.g. 5m for a longer local run). PAPAYD_SOAK_REPORT names a
// file to which TestSoak and TestSoakReplicas append their result lines
// (go test shows a passing test's output only with -v; .ci/run prints the
// file).
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PAPAYD_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PAPAYD_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 45 * time.Second
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// soakProcess is papayd running as its own process, killed and restarted
// at will.
type soakProcess struct {
	t    *testing.T
	bin  string
	env  []string
	http string
	// notifyURLs are the notify URLs papayd is started with in turn: each
	// restart changes PAPAYD_NOTIFY_URL (both reach papayd).
	notifyURLs []string
	starts     int
	mu         sync.Mutex
	cmd        *exec.Cmd
	log        *os.File
}

func (s *soakProcess) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin)
	cmd.Env = append(slices.Clip(s.env), "PAPAYD_NOTIFY_URL="+s.notifyURLs[s.starts%len(s.notifyURLs)])
	s.starts++
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(s.log.Name())
			s.t.Fatalf("papayd did not become healthy; its log:\n%s", out[max(0, len(out)-4096):])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no flush, whatever was in flight is cut.
func (s *soakProcess) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// TestSoak drives many agreements and charges concurrently against papayd
// running as a process in live mode towards the simulator, while the
// simulator injects faults at random (latency, 500s, 429s, dropped
// connections, answers lost after the deduction, lost/dropped/duplicated/
// delayed notifications) and papayd is killed with SIGKILL and restarted,
// each time with another notify URL. Deductions slower than papayd's
// WeChat deadline race closes; callers with deadlines of a millisecond or
// two cancel their calls inside group commits; presigns are retried after
// the session ended while the PAPAY.SIGN was lost. Half the paid charges
// are refunded in one to three parts (some payers' refunds are refused
// NOT_ENOUGH at first, some settle later; the refunds asked just before a
// kill are asked again after it under the same out_refund_no, and some
// ask for more than is left). At the end every local record must equal
// the simulator's ledger (refunds included: compareRefunds), and `papayd
// verify` must find no mismatch.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak test takes about a minute; run without -short")
	}
	// Beside the other end-to-end tests, not before them: its minute of
	// load overlaps their waiting instead of adding to it.
	t.Parallel()
	runSoak(t, startSoakSingle(t))
}

// TestSoakReplicas is TestSoak with two replicas of papayd, as processes in
// live mode on one PostgreSQL database: the callers' requests are spread
// over both (gRPC round robin, moving to the other while one is down), the
// simulator's notifications reach either through the round-robin proxy,
// and the killer SIGKILLs either one at random and restarts it. At the end
// every local record must equal the simulator's ledger, and papayd verify
// on the database must find no mismatch.
func TestSoakReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak test takes about a minute; run without -short")
	}
	t.Parallel()
	rs := startReplicas(t, 2, 0.001, soakSettings())
	target := &soakTarget{sb: rs.sb, conn: rs.balanced(t), replicas: len(rs.replicas), bin: rs.bin,
		notifyURLs: func() int { return 1 }}
	for _, r := range rs.replicas {
		target.procs = append(target.procs, r.proc)
		target.logs = append(target.logs, r.log)
	}
	target.verifyEnv = append(slices.Clip(rs.replicas[0].proc.env), "PAPAYD_REPLICA=verify", "PAPAYD_NOTIFY_URL="+rs.notifyURL)
	runSoak(t, target)
}

// soakTarget is what the soak drives: the simulator, papayd's processes
// (one, or replicas on one database), a connection reaching them, and how
// to run papayd verify on their records.
type soakTarget struct {
	sb         *sandbox.Sandbox
	conn       *grpc.ClientConn
	procs      []*soakProcess
	replicas   int // 1: TestSoak; more: TestSoakReplicas
	bin        string
	verifyEnv  []string
	notifyURLs func() int // how many notify URLs papayd was given
	logs       []string
}

// soakSettings are the soak's papayd settings besides the live ones.
func soakSettings() map[string]string {
	env := map[string]string{}
	env["PAPAYD_MERCHANT_CATEGORY_CODE"] = "5999"
	env["PAPAYD_WECHATPAY_TIMEOUT"] = "2s"
	env["PAPAYD_LOG_LEVEL"] = "warn"
	for k, v := range fastReconciler {
		if k != "PAPAYD_NOTIFY_URL" && k != "PAPAYD_WECHATPAY_TIMEOUT" {
			env[k] = v
		}
	}
	env["PAPAYD_CHARGE_UNPAID_TIMEOUT"] = "3s"
	env["PAPAYD_AGREEMENT_RECHECK"] = "5s"
	// A deduction may execute up to the 2s deadline plus the 2.5s slow
	// latency below after it was sent.
	env["PAPAYD_CHARGE_IN_FLIGHT"] = "6s"
	env["PAPAYD_FINAL_RECHECK"] = "2s,10s"
	env["PAPAYD_VERIFY_QPS"] = "500"
	// The simulator spaces one order's refunds by its minute × 0.001.
	env["PAPAYD_REFUND_SPACING"] = "150ms"
	return env
}

// startSoakSingle starts TestSoak's papayd: one process on SQLite, given
// one of two notify URLs (both reaching it) at each start.
func startSoakSingle(t *testing.T) *soakTarget {
	t.Helper()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr := freePort(t), freePort(t)
	notifyURL := "http://" + httpAddr + "/wechatpay/notify"
	sb, err := sandbox.New(sandbox.Options{Credentials: creds, TimeScale: 0.001, TerminationNotifyURL: notifyURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	wxURL, wxCA := serveWeChat(t, sb.APIHandler())

	bin := buildPapayd(t)
	env := liveEnv(t, creds, wxURL, wxCA)
	env["PAPAYD_GRPC_ADDR"], env["PAPAYD_HTTP_ADDR"] = grpcAddr, httpAddr
	maps.Copy(env, soakSettings())
	delete(env, "PAPAYD_NOTIFY_URL")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "papayd.log"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(httpAddr)
	proc := &soakProcess{t: t, bin: bin, http: httpAddr, log: logFile, env: os.Environ(),
		notifyURLs: []string{notifyURL, "http://localhost:" + port + "/wechatpay/notify"}}
	for k, v := range env {
		proc.env = append(proc.env, k+"="+v)
	}
	t.Cleanup(func() { proc.kill(); logFile.Close() })
	proc.start()

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &soakTarget{sb: sb, conn: conn, procs: []*soakProcess{proc}, replicas: 1, bin: bin,
		verifyEnv:  append(slices.Clip(proc.env), "PAPAYD_NOTIFY_URL="+notifyURL),
		notifyURLs: func() int { return min(proc.starts, len(proc.notifyURLs)) },
		logs:       []string{logFile.Name()}}
}

// runSoak drives the soak's load against target (see TestSoak) and checks
// the outcome.
func runSoak(t *testing.T, target *soakTarget) {
	sb, conn := target.sb, target.conn
	agreements, charges := papayv1.NewAgreementServiceClient(conn), papayv1.NewChargeServiceClient(conn)
	refunds := papayv1.NewRefundServiceClient(conn)
	// A StreamEvents consumer from the first event, across every restart.
	consumer := &streamConsumer{}
	consumerCtx, stopConsumer := context.WithCancel(context.Background())
	consumerDone := make(chan struct{})
	go func() { defer close(consumerDone); consumer.run(consumerCtx, papayv1.NewEventServiceClient(conn)) }()
	defer func() { stopConsumer(); <-consumerDone }()

	if err := sb.SetFaults(sandbox.Faults{Seed: 20261127, Rules: []sandbox.FaultRule{
		// Slower than papayd's 2s deadline: the deduction executes after
		// papayd gave up on it, and may race a close.
		{Kind: sandbox.FaultLatency, Method: "POST", Path: deductPath, Probability: 0.04, DelayMS: 2500},
		{Kind: sandbox.FaultLatency, Probability: 0.05, DelayMS: 200},
		{Kind: sandbox.FaultDropNotification, EventType: "PAPAY.SIGN", Probability: 0.3},
		{Kind: sandbox.FaultSystemError, Probability: 0.05},
		{Kind: sandbox.FaultRateLimit, Probability: 0.03},
		{Kind: sandbox.FaultDropConnection, Probability: 0.03},
		{Kind: sandbox.FaultLoseResponse, Probability: 0.06},
		{Kind: sandbox.FaultLoseAttempt, Probability: 0.1},
		{Kind: sandbox.FaultDropNotification, Probability: 0.05},
		{Kind: sandbox.FaultDuplicateNotification, Probability: 0.05},
		{Kind: sandbox.FaultDelayNotification, Probability: 0.05, DelayMS: 150},
	}}); err != nil {
		t.Fatal(err)
	}

	duration := soakDuration(t)
	loadEnd := time.Now().Add(duration)
	var wg sync.WaitGroup
	// retry calls ctx-bounded RPCs until they answer: papayd may be down,
	// WeChat may be failing. Answers other than Unavailable/Deadline end it.
	retry := func(call func(ctx context.Context) error) error {
		var err error
		for range 200 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = call(ctx)
			cancel()
			if err == nil {
				return nil
			}
			code, _, _ := statusDetails(err)
			if code.String() != "Unavailable" && code.String() != "DeadlineExceeded" && code.String() != "Internal" {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	}

	var restarts, refundsAsked, refundRetries, refundsAfterKill, notEnoughPayers, overAsked atomic.Int64
	var recentRef recentRefunds
	kills := make([]atomic.Int64, len(target.procs))
	wg.Add(1)
	go func() { // the killer
		defer wg.Done()
		every := duration / 4
		// Seeded so that three kills of two replicas hit both.
		rng := rand.New(rand.NewPCG(1, 7))
		for time.Now().Add(every).Before(loadEnd) {
			time.Sleep(every)
			k := rng.IntN(len(target.procs)) // either replica
			kills[k].Add(1)
			proc := target.procs[k]
			proc.kill()
			time.Sleep(200 * time.Millisecond)
			proc.start()
			restarts.Add(1)
			// The refunds asked just before the kill, asked again with the
			// same out_refund_no, as a merchant who lost the answers would.
			for _, req := range recentRef.last(5) {
				var resp *papayv1.CreateRefundResponse
				err := retry(func(ctx context.Context) (err error) {
					resp, err = refunds.CreateRefund(ctx, req)
					return err
				})
				if err != nil || resp.GetRefund().GetAmount().GetRefund() != req.GetAmount().GetRefund() {
					t.Errorf("refund %s asked again after a restart: %v %v", req.GetOutRefundNo(), resp.GetRefund(), err)
					continue
				}
				refundsAfterKill.Add(1)
			}
		}
	}()

	var created, closes, represigns, cancelled atomic.Int64
	var recent recentCharges
	wg.Add(1)
	go func() { // callers that give up within a millisecond or two, mid-commit
		defer wg.Done()
		rng := rand.New(rand.NewPCG(99, 7))
		for time.Now().Before(loadEnd) {
			req := recent.pick(rng)
			if req == nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(2000))*time.Microsecond)
			if rng.IntN(2) == 0 {
				_, _ = charges.CreateCharge(ctx, req) // the same request as its creator's
			} else {
				_, _ = charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: req.GetOutTradeNo(), Refresh: true})
			}
			cancel()
			cancelled.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	const workers = 6
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; time.Now().Before(loadEnd); i++ {
				openid := fmt.Sprintf("oSoak-%d-%d", w, i)
				code := fmt.Sprintf("SOAK%dA%d", w, i)
				// One in four sessions is short, and presigned again under the
				// same code once it ended: papayd must find the signature at
				// WeChat (its PAPAY.SIGN is often lost), not open a session.
				presignReq := &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: openid, OutContractCode: code}
				represign := rng.IntN(4) == 0
				// WeChat keeps a session's end in whole seconds, so papayd sends
				// it truncated: what is left is measured from the truncated end.
				const shortSession = 2500 * time.Millisecond
				shortLeft := func() time.Duration {
					return time.Until(presignReq.GetSessionExpireTime().AsTime().Truncate(time.Second))
				}
				if represign {
					presignReq.SessionExpireTime = timestampIn(shortSession)
				}
				var c sandbox.Contract
				for attempt := 1; ; attempt++ {
					var pre *papayv1.CreatePresignSessionResponse
					err := retry(func(ctx context.Context) (err error) {
						// A retry that waited out a restart may be past the short
						// session's end: ask for another short one (the expiry is
						// not part of what makes a presign the same request).
						if represign && shortLeft() < time.Second {
							presignReq.SessionExpireTime = timestampIn(shortSession)
						}
						pre, err = agreements.CreatePresignSession(ctx, presignReq)
						return err
					})
					// A slow call (a loaded machine) may reach WeChat after the
					// short session's end, which WeChat refuses: ask again.
					if represign && status.Code(err) == codes.InvalidArgument && shortLeft() <= 0 && attempt < 5 {
						presignReq.SessionExpireTime = timestampIn(shortSession)
						continue
					}
					if err != nil {
						t.Errorf("presign %s: %v", code, err)
						return
					}
					c, err = sb.SignSession(pre.GetSessionId(), sandbox.User{})
					// A short session may end before the user signs when the
					// presign's answer was slow (a loaded machine): the user
					// asks the merchant for another, under the same code.
					if represign && errors.Is(err, sandbox.ErrSessionExpired) && attempt < 5 {
						presignReq.SessionExpireTime = timestampIn(shortSession)
						continue
					}
					if err != nil {
						t.Errorf("sign %s: %v", code, err)
						return
					}
					break
				}
				if represign {
					time.Sleep(time.Until(presignReq.GetSessionExpireTime().AsTime().Add(200 * time.Millisecond)))
					presignReq.SessionExpireTime = timestampIn(time.Hour)
					err := retry(func(ctx context.Context) error {
						_, err := agreements.CreatePresignSession(ctx, presignReq)
						return err
					})
					if _, reason, _ := statusDetails(err); reason != "OUT_CONTRACT_CODE_REUSED" {
						t.Errorf("presign of signed %s again: %v, want OUT_CONTRACT_CODE_REUSED", code, err)
					}
					represigns.Add(1)
				}
				signedLocally := false
				for range 400 {
					resp, err := agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{ContractId: c.ContractID})
					if err == nil && resp.GetAgreement().GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
						signedLocally = true
						break
					}
					time.Sleep(25 * time.Millisecond)
				}
				if !signedLocally {
					t.Errorf("agreement %s never became SIGNED locally", code)
					return
				}
				switch rng.IntN(10) {
				case 0:
					_, _ = sb.ConfigurePayer(openid, sandbox.PayerConfig{Behavior: sandbox.BehaviorInsufficientBalance})
				case 1, 2:
					_, _ = sb.ConfigurePayer(openid, sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 150})
				}
				var paid []*papayv1.CreateChargeRequest
				for k := range 3 {
					no := fmt.Sprintf("SOAK%dA%dC%d", w, i, k)
					req := &papayv1.CreateChargeRequest{OutTradeNo: no, ContractId: c.ContractID,
						Amount: &papayv1.Amount{Total: int64(100 + rng.IntN(10000)), Currency: "HKD"}, Description: "Soak-Monthly"}
					var resp *papayv1.CreateChargeResponse
					if err := retry(func(ctx context.Context) (err error) { // the same request each time
						resp, err = charges.CreateCharge(ctx, req)
						return err
					}); err != nil {
						// A refusal is fine; anything else is not.
						if code, reason, _ := statusDetails(err); reason != "AGREEMENT_NOT_SIGNED" {
							t.Errorf("charge %s: %v %q (%v)", no, code, reason, err)
						}
						break
					}
					created.Add(1)
					recent.add(req)
					if resp.GetCharge().GetState() == papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
						paid = append(paid, req)
					}
					// Half the charges whose outcome is still open are closed at
					// once: a deduction may be executing right now.
					if st := resp.GetCharge().GetState(); (st == papayv1.ChargeState_CHARGE_STATE_PENDING ||
						st == papayv1.ChargeState_CHARGE_STATE_PROCESSING) && rng.IntN(2) == 0 {
						err := retry(func(ctx context.Context) error {
							_, err := charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: no})
							return err
						})
						if code, _, _ := statusDetails(err); err != nil && code.String() != "FailedPrecondition" {
							t.Errorf("close %s: %v", no, err)
						}
						closes.Add(1)
					}
				}
				// Refunds: half the paid charges get one to three partial
				// refunds, with a payer whose refunds are refused NOT_ENOUGH
				// at first, or settle later, or succeed at once.
				switch rng.IntN(4) {
				case 0:
					_, _ = sb.ConfigurePayer(openid, sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorNotEnough, RefundNotEnoughAttempts: 1 + rng.IntN(3)})
					notEnoughPayers.Add(1)
				case 1:
					_, _ = sb.ConfigurePayer(openid, sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorProcessing, RefundSettleAfterMS: 100})
				}
				for _, c := range paid {
					if rng.IntN(2) == 0 {
						continue
					}
					left := c.GetAmount().GetTotal()
					for k := range 1 + rng.IntN(3) {
						amount := max(left/2, 1)
						if k == 2 {
							amount = left // the last of three refunds the rest
						}
						req := &papayv1.CreateRefundRequest{OutRefundNo: fmt.Sprintf("%sR%d", c.GetOutTradeNo(), k), OutTradeNo: c.GetOutTradeNo(),
							Amount: &papayv1.RefundAmount{Refund: amount, Currency: "HKD"}, Reason: "soak"}
						tries := 0
						var resp *papayv1.CreateRefundResponse
						if err := retry(func(ctx context.Context) (err error) { // the same request each time
							tries++
							resp, err = refunds.CreateRefund(ctx, req)
							return err
						}); err != nil {
							t.Errorf("refund %s: %v", req.GetOutRefundNo(), err)
							break
						}
						if got := resp.GetRefund(); got.GetOutRefundNo() != req.GetOutRefundNo() || got.GetAmount().GetRefund() != amount {
							t.Errorf("refund %s answered %v", req.GetOutRefundNo(), got)
						}
						refundsAsked.Add(1)
						if tries > 1 {
							refundRetries.Add(1)
						}
						recentRef.add(req)
						if left -= amount; left == 0 {
							break
						}
					}
					if left > 0 && rng.IntN(4) == 0 { // more than is left: refused before WeChat
						over := &papayv1.CreateRefundRequest{OutRefundNo: c.GetOutTradeNo() + "RX", OutTradeNo: c.GetOutTradeNo(),
							Amount: &papayv1.RefundAmount{Refund: left + 1, Currency: "HKD"}, Reason: "soak"}
						err := retry(func(ctx context.Context) error {
							_, err := refunds.CreateRefund(ctx, over)
							return err
						})
						if _, reason, _ := statusDetails(err); reason != "REFUND_EXCEEDS_CHARGE" {
							t.Errorf("refund %s of %d with %d left: %v, want REFUND_EXCEEDS_CHARGE", over.GetOutRefundNo(), left+1, left, err)
						}
						overAsked.Add(1)
					}
				}
				switch rng.IntN(8) {
				case 0:
					_ = retry(func(ctx context.Context) error {
						_, err := agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: c.ContractID, TerminationNote: "soak"})
						return err
					})
				case 1:
					_, _ = sb.UserTerminate(c.ContractID)
				}
			}
		}()
	}
	wg.Wait()
	sb.ClearFaults()
	faults := sb.FaultCount()

	// Let papayd settle: every charge final, every agreement agreeing.
	settleEnd := time.Now().Add(60 * time.Second)
	var lost, doubled, unresolved int
	var mismatches []string
	var rl refundLedger
	for {
		lost, doubled, unresolved, mismatches = compareLedgers(t, sb, charges, agreements)
		rl = compareRefunds(t, sb, refunds, charges)
		if unresolved+rl.unresolved == 0 || time.Now().After(settleEnd) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	mismatches = append(mismatches, rl.mismatches...)
	// The replicas' soak says so on each of its lines.
	soak := "soak: "
	if target.replicas > 1 {
		soak = fmt.Sprintf("soak: replicas: %d, ", target.replicas)
	}
	line := fmt.Sprintf(soak+"%d charges, %d faults, %d restarts, lost %d, doubled %d, unresolved %d, refunds %d, refunded twice %d, over-refunded %d, refunds unresolved %d",
		created.Load(), faults, restarts.Load(), lost, doubled, unresolved, rl.refunds, rl.twice, rl.over, rl.unresolved)
	mix := fmt.Sprintf(soak+"%d closes racing deductions, %d presign retries after signing, %d cancelled calls, %d notify URLs, "+
		"%d refunds asked (%d at WeChat, %d retried after an error, %d asked again after a restart, %d NOT_ENOUGH refusals from %d payers, %d over-refunds refused)",
		closes.Load(), represigns.Load(), cancelled.Load(), target.notifyURLs(),
		refundsAsked.Load(), rl.atWeChat, refundRetries.Load(), refundsAfterKill.Load(), rl.notEnough, notEnoughPayers.Load(), overAsked.Load())
	if target.replicas > 1 {
		for k := range kills {
			mix += fmt.Sprintf(", replica-%d killed %d times", k, kills[k].Load())
			if kills[k].Load() == 0 && restarts.Load() >= 3 {
				t.Errorf("replica-%d was never killed in %d restarts", k, restarts.Load())
			}
		}
	}
	// papayd verify, beside the running papayd: every record against WeChat.
	cmd := exec.Command(target.bin, "verify")
	cmd.Env = target.verifyEnv
	out, verr := cmd.Output()
	verifyLine := strings.TrimSpace(string(out))
	if i := strings.LastIndex(verifyLine, "\n"); i >= 0 {
		t.Errorf("papayd verify:\n%s", verifyLine)
		verifyLine = verifyLine[i+1:]
	}
	if verr != nil || !strings.HasSuffix(verifyLine, " 0 mismatches") {
		t.Errorf("papayd verify: %v: %q", verr, verifyLine)
	}
	eventsLine, eventMismatches := consumer.check(t, papayv1.NewEventServiceClient(conn), charges)
	if target.replicas > 1 {
		verifyLine = strings.TrimSuffix(soak, ", ") + ": " + verifyLine
		eventsLine = strings.TrimSuffix(soak, ", ") + ": " + eventsLine
	}
	stopConsumer()
	<-consumerDone
	for _, l := range []string{line, mix, verifyLine, eventsLine} {
		fmt.Println(l)
		t.Log(l)
	}
	line = line + "\n" + mix + "\n" + verifyLine + "\n" + eventsLine
	if report := os.Getenv("PAPAYD_SOAK_REPORT"); report != "" {
		// Appended: TestSoak and TestSoakReplicas both report there.
		f, err := os.OpenFile(report, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			_, err = f.WriteString(line + "\n")
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			t.Errorf("write %s: %v", report, err)
		}
	}
	for _, m := range append(mismatches, eventMismatches...) {
		t.Error(m)
	}
	if created.Load() == 0 || faults == 0 || restarts.Load() == 0 || closes.Load() == 0 || represigns.Load() == 0 || cancelled.Load() == 0 ||
		rl.refunds == 0 || refundsAfterKill.Load() == 0 || rl.notEnough == 0 {
		t.Errorf("the soak did not exercise anything: %s\n%s", line, mix)
	}
	if lost != 0 || doubled != 0 || unresolved != 0 || rl.twice != 0 || rl.over != 0 || rl.unresolved != 0 {
		t.Errorf("records disagree with WeChat: %s (papayd logs: %s)", line, strings.Join(target.logs, ", "))
	}
}

// compareLedgers checks every local charge and agreement against the
// simulator. lost: money WeChat took that papayd does not record as paid;
// doubled: an order WeChat deducted more than once; unresolved: a local
// record still open, or disagreeing with WeChat in any other way.
func compareLedgers(t *testing.T, sb *sandbox.Sandbox, charges papayv1.ChargeServiceClient, agreements papayv1.AgreementServiceClient) (lost, doubled, unresolved int, mismatches []string) {
	t.Helper()
	local := map[string]*papayv1.Charge{}
	token := ""
	for {
		resp, err := charges.ListCharges(context.Background(), &papayv1.ListChargesRequest{PageSize: 500, PageToken: token})
		if err != nil {
			return 0, 0, 1, []string{"list charges: " + err.Error()}
		}
		for _, c := range resp.GetCharges() {
			local[c.GetOutTradeNo()] = c
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	orders := map[string]sandbox.Order{}
	for _, o := range sb.Orders() {
		orders[o.OutTradeNo] = o
		if o.Deductions > 1 {
			doubled++
			mismatches = append(mismatches, fmt.Sprintf("%s deducted %d times", o.OutTradeNo, o.Deductions))
		}
		c := local[o.OutTradeNo]
		if o.Deductions > 0 && (c == nil || c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || c.GetTransactionId() != o.TransactionID) {
			lost++
			mismatches = append(mismatches, fmt.Sprintf("%s paid at WeChat, local %v", o.OutTradeNo, c.GetState()))
		}
	}
	for no, c := range local {
		o, atWeChat := orders[no]
		paid := atWeChat && o.Deductions > 0
		switch c.GetState() {
		case papayv1.ChargeState_CHARGE_STATE_SUCCEEDED:
			if !paid {
				unresolved++
				mismatches = append(mismatches, fmt.Sprintf("%s SUCCEEDED locally, not paid at WeChat", no))
			}
		case papayv1.ChargeState_CHARGE_STATE_FAILED, papayv1.ChargeState_CHARGE_STATE_CLOSED:
			// paid would already count as lost
		default:
			unresolved++
			mismatches = append(mismatches, fmt.Sprintf("%s still %v", no, c.GetState()))
		}
	}
	for _, sc := range sb.Contracts() {
		resp, err := agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{ContractId: sc.ContractID})
		if err != nil {
			unresolved++
			mismatches = append(mismatches, "agreement "+sc.ContractID+": "+err.Error())
			continue
		}
		if got := resp.GetAgreement().GetState().String(); got != "AGREEMENT_STATE_"+string(sc.State) {
			unresolved++
			mismatches = append(mismatches, fmt.Sprintf("agreement %s: local %s, WeChat %s", sc.ContractID, got, sc.State))
		}
	}
	if len(mismatches) > 20 {
		mismatches = append(mismatches[:20], strconv.Itoa(len(mismatches)-20)+" more")
	}
	return lost, doubled, unresolved, mismatches
}

// recentCharges are charge requests already made, for the callers that
// repeat them with tiny deadlines.
type recentCharges struct {
	mu   sync.Mutex
	reqs []*papayv1.CreateChargeRequest
}

func (r *recentCharges) add(req *papayv1.CreateChargeRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

// pick returns one of the last 50 requests, or nil.
func (r *recentCharges) pick(rng *rand.Rand) *papayv1.CreateChargeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return nil
	}
	n := min(len(r.reqs), 50)
	return r.reqs[len(r.reqs)-n+rng.IntN(n)]
}

// streamConsumer reads StreamEvents from the first event and, whenever the
// stream ends (papayd killed), reconnects after the last sequence it
// received. It keeps every event as received, duplicates included.
type streamConsumer struct {
	mu         sync.Mutex
	events     []*papayv1.Event
	reconnects int
}

// last is the sequence of the last event received (0: none).
func (s *streamConsumer) last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return 0
	}
	return s.events[len(s.events)-1].GetSequence()
}

func (s *streamConsumer) run(ctx context.Context, ev papayv1.EventServiceClient) {
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			s.mu.Lock()
			s.reconnects++
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		stream, err := ev.StreamEvents(ctx, &papayv1.StreamEventsRequest{AfterSequence: s.last()}, grpc.WaitForReady(true))
		if err != nil {
			continue
		}
		for {
			r, err := stream.Recv()
			if err != nil {
				break
			}
			s.mu.Lock()
			s.events = append(s.events, r.GetEvent())
			s.mu.Unlock()
		}
	}
}

// check waits (up to 30 s) until the consumer has caught up with the last
// event recorded, then checks what it received: no event twice, sequences
// strictly rising, exactly the events ListEvents has, and per charge a
// replay of its life ending in its recorded state (replayCharges).
func (s *streamConsumer) check(t *testing.T, ev papayv1.EventServiceClient, charges papayv1.ChargeServiceClient) (string, []string) {
	t.Helper()
	listed := allEvents(t, ev, 0)
	local := listAllCharges(t, charges)
	var want uint64
	if len(listed) > 0 {
		want = listed[len(listed)-1].GetSequence()
	}
	for deadline := time.Now().Add(30 * time.Second); s.last() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	got := slices.Clone(s.events)
	reconnects := s.reconnects
	s.mu.Unlock()
	var bad []string
	ids := map[string]bool{}
	for i, e := range got {
		if ids[e.GetId()] {
			bad = append(bad, "stream: event "+e.GetId()+" received twice")
		}
		ids[e.GetId()] = true
		if i > 0 && e.GetSequence() <= got[i-1].GetSequence() {
			bad = append(bad, fmt.Sprintf("stream: sequence %d after %d", e.GetSequence(), got[i-1].GetSequence()))
		}
	}
	if len(got) != len(listed) {
		bad = append(bad, fmt.Sprintf("stream: %d events received, %d listed", len(got), len(listed)))
	} else {
		for i := range got {
			if got[i].GetId() != listed[i].GetId() {
				bad = append(bad, fmt.Sprintf("stream: event %d is %s, listed %s", i, got[i].GetId(), listed[i].GetId()))
				break
			}
		}
	}
	bad = append(bad, replayCharges(got, local)...)
	line := fmt.Sprintf("soak events: %d events, %d charges replayed, %d stream reconnects, %d mismatches", len(got), len(local), reconnects, len(bad))
	if len(bad) > 20 {
		bad = append(bad[:20], strconv.Itoa(len(bad)-20)+" more")
	}
	return line, bad
}

// refundLedger is the comparison of papayd's refunds with the simulator's.
type refundLedger struct {
	refunds    int // refunds papayd recorded
	twice      int // out_refund_no taken off its order more than once at WeChat
	over       int // orders refunded beyond their total, at WeChat or in papayd
	unresolved int // a refund still open, or papayd and WeChat disagreeing
	atWeChat   int // refunds in the simulator's ledger
	notEnough  int // NOT_ENOUGH refusals the simulator made before accepting
	mismatches []string
}

// wxRefundState is the local state a WeChat refund status corresponds to.
var wxRefundState = map[sandbox.RefundStatus]papayv1.RefundState{
	sandbox.RefundSuccess:    papayv1.RefundState_REFUND_STATE_SUCCEEDED,
	sandbox.RefundProcessing: papayv1.RefundState_REFUND_STATE_PROCESSING,
	sandbox.RefundAbnormal:   papayv1.RefundState_REFUND_STATE_ABNORMAL,
	sandbox.RefundClosed:     papayv1.RefundState_REFUND_STATE_CLOSED,
}

// compareRefunds checks papayd's refunds against the simulator's refund
// ledger: the same out_refund_no set (but refunds WeChat refused, FAILED
// locally), the same order, amount, refund id and state; none open;
// no number applied twice; no order refunded beyond its total; and each
// charge's refunded_total equal to what WeChat refunded of it.
func compareRefunds(t *testing.T, sb *sandbox.Sandbox, refunds papayv1.RefundServiceClient, charges papayv1.ChargeServiceClient) refundLedger {
	t.Helper()
	var rl refundLedger
	bad := func(unresolved bool, format string, args ...any) {
		if unresolved {
			rl.unresolved++
		}
		rl.mismatches = append(rl.mismatches, fmt.Sprintf(format, args...))
	}
	local := map[string]*papayv1.Refund{}
	token := ""
	for {
		resp, err := refunds.ListRefunds(context.Background(), &papayv1.ListRefundsRequest{PageSize: 500, PageToken: token})
		if err != nil {
			bad(true, "list refunds: %v", err)
			return rl
		}
		for _, r := range resp.GetRefunds() {
			local[r.GetOutRefundNo()] = r
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	rl.refunds = len(local)

	wx := map[string]sandbox.Refund{}
	applied := map[string]int{}
	taken, succeeded, totals := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, r := range sb.Refunds() {
		rl.atWeChat++
		rl.notEnough += r.NotEnoughRefusals
		wx[r.OutRefundNo] = r
		applied[r.OutRefundNo] += r.Applied
		totals[r.OutTradeNo] = r.Total
		if r.Status != sandbox.RefundClosed {
			taken[r.OutTradeNo] += r.Refund
		}
		if r.Status == sandbox.RefundSuccess {
			succeeded[r.OutTradeNo] += r.Refund
		}
		if _, ok := local[r.OutRefundNo]; !ok {
			bad(true, "refund %s at WeChat (%s), not recorded", r.OutRefundNo, r.Status)
		}
	}
	for no, n := range applied {
		if n > 1 {
			rl.twice++
			bad(false, "refund %s applied %d times at WeChat", no, n)
		}
	}
	for no, sum := range taken {
		if sum > totals[no] {
			rl.over++
			bad(false, "order %s refunded %d of %d at WeChat", no, sum, totals[no])
		}
	}
	for no, r := range local {
		switch w, ok := wx[no]; {
		case r.GetState() == papayv1.RefundState_REFUND_STATE_PENDING || r.GetState() == papayv1.RefundState_REFUND_STATE_PROCESSING:
			bad(true, "refund %s still %v (WeChat: %s)", no, r.GetState(), w.Status)
		case !ok:
			if r.GetState() != papayv1.RefundState_REFUND_STATE_FAILED {
				bad(true, "refund %s %v, unknown to WeChat", no, r.GetState())
			}
		case w.OutTradeNo != r.GetOutTradeNo() || w.Refund != r.GetAmount().GetRefund() || w.RefundID != r.GetRefundId():
			bad(true, "refund %s: recorded %s %d %s, WeChat %s %d %s", no, r.GetOutTradeNo(), r.GetAmount().GetRefund(), r.GetRefundId(),
				w.OutTradeNo, w.Refund, w.RefundID)
		case wxRefundState[w.Status] != r.GetState():
			bad(true, "refund %s: recorded %v, WeChat %s", no, r.GetState(), w.Status)
		}
	}
	for no, c := range listAllCharges(t, charges) {
		if c.GetRefundedTotal() > c.GetAmount().GetTotal() {
			rl.over++
			bad(false, "charge %s refunded_total %d of %d", no, c.GetRefundedTotal(), c.GetAmount().GetTotal())
		}
		if c.GetRefundedTotal() != succeeded[no] {
			bad(true, "charge %s refunded_total %d, WeChat refunded %d", no, c.GetRefundedTotal(), succeeded[no])
		}
	}
	if len(rl.mismatches) > 20 {
		rl.mismatches = append(rl.mismatches[:20], strconv.Itoa(len(rl.mismatches)-20)+" more")
	}
	return rl
}

// recentRefunds are refund requests already made, for the restarts that
// ask them again.
type recentRefunds struct {
	mu   sync.Mutex
	reqs []*papayv1.CreateRefundRequest
}

func (r *recentRefunds) add(req *papayv1.CreateRefundRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

// last returns the last n requests (fewer if there are not as many).
func (r *recentRefunds) last(n int) []*papayv1.CreateRefundRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs[len(r.reqs)-min(n, len(r.reqs)):])
}
