package tests

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const deductPath = "/v3/global/papay/transactions"

// withFaults installs fault rules in p's simulator.
func withFaults(t *testing.T, sb *sandbox.Sandbox, rules ...sandbox.FaultRule) {
	t.Helper()
	if err := sb.SetFaults(sandbox.Faults{Seed: 1, Rules: rules}); err != nil {
		t.Fatal(err)
	}
}

// callsTo counts papayd's audited calls to one path, by HTTP status.
func (p *papayd) callsTo(path string) map[int]int {
	out := map[int]int{}
	for _, c := range p.wechatCalls() {
		if c.Path == path {
			out[c.Status]++
		}
	}
	return out
}

func TestFaultErrorsAreRetriedWithTheSameKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rules []sandbox.FaultRule
		calls map[int]int // audited attempts by HTTP status (0: no answer)
	}{
		{"500 SYSTEM_ERROR", []sandbox.FaultRule{{Kind: sandbox.FaultSystemError, Method: "POST", Path: deductPath, Count: 2}}, map[int]int{500: 2, 200: 1}},
		{"429 rate limited", []sandbox.FaultRule{{Kind: sandbox.FaultRateLimit, Method: "POST", Path: deductPath, Count: 1}}, map[int]int{429: 1, 200: 1}},
		{"dropped connection", []sandbox.FaultRule{{Kind: sandbox.FaultDropConnection, Method: "POST", Path: deductPath, Count: 1}}, map[int]int{0: 1, 200: 1}},
		{"answer lost after the deduction", []sandbox.FaultRule{{Kind: sandbox.FaultLoseResponse, Method: "POST", Path: deductPath, Count: 1}}, map[int]int{0: 1, 200: 1}},
		{"latency", []sandbox.FaultRule{{Kind: sandbox.FaultLatency, Method: "POST", Path: deductPath, Count: 1, DelayMS: 300}}, map[int]int{200: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, "")
			sb := p.app.Sandbox()
			a := signed(t, p, "oFault")
			withFaults(t, sb, tc.rules...)
			c := createCharge(t, p, chargeReq("FAULT-1", a.GetContractId(), 1000))
			if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
				t.Fatalf("charge %v", c)
			}
			if n := p.deductions("FAULT-1"); n != 1 {
				t.Fatalf("%d deductions", n)
			}
			if got := p.callsTo(deductPath); !equalCounts(got, tc.calls) {
				t.Fatalf("audited deduction attempts %v, want %v", got, tc.calls)
			}
			if sb.FaultCount() == 0 {
				t.Fatal("no fault was injected")
			}
		})
	}
}

func equalCounts(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestFaultEveryAnswerLost: WeChat deducts, but no answer reaches papayd
// (every attempt's response is lost) and the notification is dropped too.
// The caller gets PENDING; the reconciler finds the deduction; one
// deduction in all.
func TestFaultEveryAnswerLost(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{
		"PAPAYD_RECONCILE_INTERVAL": "50ms", "PAPAYD_RECONCILE_FIRST_CHECK": "200ms", "PAPAYD_RECONCILE_TIME_SCALE": "0.001",
	})
	sb := p.app.Sandbox()
	a := signed(t, p, "oFault-lost")
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultLoseResponse, Method: "POST", Path: deductPath, Count: 10},
		sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "TRANSACTION.SUCCESS", Count: 1})
	c := createCharge(t, p, chargeReq("FAULT-LOST", a.GetContractId(), 1000))
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("charge %v, want PENDING", c)
	}
	sb.ClearFaults()
	waitCharge(t, p, "FAULT-LOST", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	if n := p.deductions("FAULT-LOST"); n != 1 {
		t.Fatalf("%d deductions", n)
	}
}

func TestFaultNotifications(t *testing.T) {
	t.Parallel()
	fast := map[string]string{"PAPAYD_RECONCILE_INTERVAL": "50ms", "PAPAYD_RECONCILE_FIRST_CHECK": "200ms", "PAPAYD_RECONCILE_TIME_SCALE": "0.001"}

	t.Run("lost attempts are retried", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		sb := p.app.Sandbox()
		withFaults(t, sb, sandbox.FaultRule{Kind: sandbox.FaultLoseAttempt, EventType: "PAPAY.SIGN", Count: 2})
		a := signed(t, p, "oNote-lost")
		if a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
			t.Fatalf("agreement %v", a.GetState())
		}
		// The simulator logs an attempt once its answer is in, which may be
		// after papayd applied it.
		attempts := func() int {
			n := 0
			for _, d := range sb.Deliveries() {
				if d.EventType == "PAPAY.SIGN" {
					n++
				}
			}
			return n
		}
		eventually(t, "3 attempts of PAPAY.SIGN", func() bool { return attempts() >= 3 })
		if n := attempts(); n != 3 {
			t.Fatalf("%d attempts of PAPAY.SIGN, want 3", n)
		}
	})
	t.Run("dropped: the reconciler finds the signature", func(t *testing.T) {
		t.Parallel()
		p := startWith(t, "", fast)
		withFaults(t, p.app.Sandbox(), sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "PAPAY.SIGN", Count: 1})
		a := signed(t, p, "oNote-dropped")
		if n := p.notificationsFor(a.GetOutContractCode()); len(n) != 0 {
			t.Fatalf("a dropped notification arrived: %+v", n)
		}
	})
	t.Run("duplicated: applied once", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		sb := p.app.Sandbox()
		a := signed(t, p, "oNote-dup")
		withFaults(t, sb, sandbox.FaultRule{Kind: sandbox.FaultDuplicateNotification, EventType: "TRANSACTION.SUCCESS", Count: 1})
		p.configurePayer("oNote-dup", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 50})
		createCharge(t, p, chargeReq("NOTE-DUP", a.GetContractId(), 500))
		waitCharge(t, p, "NOTE-DUP", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
		eventually(t, "both copies delivered", func() bool {
			n := 0
			for _, d := range sb.Deliveries() {
				if d.EventType == "TRANSACTION.SUCCESS" && d.Delivered {
					n++
				}
			}
			return n == 2
		})
		if n := p.notificationsAbout("NOTE-DUP"); len(n) != 1 || n[0].Outcome != "APPLIED" {
			t.Fatalf("records %+v", n)
		}
	})
	t.Run("delayed", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		withFaults(t, p.app.Sandbox(), sandbox.FaultRule{Kind: sandbox.FaultDelayNotification, EventType: "PAPAY.SIGN", Count: 1, DelayMS: 300})
		start := time.Now()
		signed(t, p, "oNote-delay")
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("signed after %v, before the delayed notification", d)
		}
	})
	t.Run("reordered: TERMINATE before SIGN", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		sb := p.app.Sandbox()
		withFaults(t, sb, sandbox.FaultRule{Kind: sandbox.FaultReorderNotifications, Count: 2, Batch: 2, HoldMS: 2000})
		pre := presign(t, p, "oNote-reorder")
		contractID := p.userSigns(pre.GetSessionId(), nil)
		if _, err := sb.UserTerminate(contractID); err != nil {
			t.Fatal(err)
		}
		code := pre.GetAgreement().GetOutContractCode()
		eventually(t, "both notifications processed", func() bool { return len(p.notificationsFor(code)) == 2 })
		n := p.notificationsFor(code)
		if n[0].EventType != "PAPAY.TERMINATE" || n[1].EventType != "PAPAY.SIGN" {
			t.Fatalf("not reordered: %+v", n)
		}
		a := getByCode(t, p, code)
		if a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED || a.GetContractId() != contractID ||
			a.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER {
			t.Fatalf("a late PAPAY.SIGN revived or broke the agreement: %v", a)
		}
	})
}

// TestPlatformCertificateRotation: WeChat rotates its platform certificate.
// papayd has only the old one; the first answer signed with the new one
// makes it fetch /v3/global/certificates (on demand) and carry on, and
// callbacks signed with the new key verify too.
func TestPlatformCertificateRotation(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	sb := p.app.Sandbox()
	a := signed(t, p, "oRotate-1")
	newSerial, err := sb.RotatePlatformCertificate()
	if err != nil {
		t.Fatal(err)
	}
	// An answer signed with the new key.
	b := signed(t, p, "oRotate-2")
	// A callback signed with the new key (PAPAY.SIGN above already was); and
	// after the old certificate is retired, everything still works.
	sb.RetireOldCertificates()
	if _, err := p.agreements.TerminateAgreement(context.Background(), &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "rotated"}); err != nil {
		t.Fatalf("terminate after rotation: %v", err)
	}
	if c := createCharge(t, p, chargeReq("ROTATE-1", b.GetContractId(), 100)); c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge after rotation %v", c)
	}
	fetched := false
	for _, c := range p.wechatCalls() {
		fetched = fetched || (c.Path == "/v3/global/certificates" && c.Status == 200)
	}
	if !fetched || sb.SigningCertificate().SerialNo != newSerial {
		t.Fatalf("certificates fetched %v, signing serial %s want %s", fetched, sb.SigningCertificate().SerialNo, newSerial)
	}
}

// TestIntentResumedAfterRestart: WeChat executes a termination but every
// answer and the notification are lost, so the merchant sees UNAVAILABLE and
// papayd keeps the intent; papayd stops (as after a crash) and, once
// restarted, resumes the intent: WeChat says the contract is gone, papayd
// asks how, and records the merchant's termination.
func TestIntentResumedAfterRestart(t *testing.T) {
	t.Parallel()
	sb, env := liveSimulator(t, "1s")
	env["PAPAYD_RECONCILE_INTERVAL"] = "1h" // only the pass at start
	dir := env["PAPAYD_DATA_DIR"]

	p := startWith(t, dir, env)
	pre := presign(t, p, "oIntent")
	c, err := sb.SignSession(pre.GetSessionId(), sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	// WeChat executes the termination, but its answers and its PAPAY.TERMINATE are lost.
	withFaults(t, sb,
		sandbox.FaultRule{Kind: sandbox.FaultLoseResponse, PathPrefix: "/v3/global/papay/contracts/" + c.ContractID + "/terminate", Count: 100},
		sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "PAPAY.TERMINATE", Count: 1})
	_, err = p.agreements.TerminateAgreement(context.Background(), &papayv1.TerminateAgreementRequest{ContractId: c.ContractID, TerminationNote: "after the crash"})
	if code, reason, _ := statusDetails(err); code != codes.Unavailable || reason != "WECHATPAY_UNAVAILABLE" {
		t.Fatalf("terminate with lost answers: %v %q (%v)", code, reason, err)
	}
	if got := getByCode(t, p, pre.GetAgreement().GetOutContractCode()); got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
		t.Fatalf("before the restart: %v", got.GetState())
	}
	p.stop()
	sb.ClearFaults()

	q := startWith(t, dir, env)
	got := waitState(t, q, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_TERMINATED)
	if got.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_MERCHANT || got.GetTerminationNote() != "after the crash" {
		t.Fatalf("resumed termination: %v", got)
	}
}
