package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// fastReconciler makes the reconciler look often and back off in
// milliseconds instead of minutes.
var fastReconciler = map[string]string{
	"PAPAYD_RECONCILE_INTERVAL":    "50ms",
	"PAPAYD_RECONCILE_FIRST_CHECK": "100ms",
	"PAPAYD_RECONCILE_TIME_SCALE":  "0.001",
	"PAPAYD_CHARGE_UNPAID_TIMEOUT": "1s",
	"PAPAYD_AGREEMENT_RECHECK":     "300ms",
	"PAPAYD_NOTIFY_URL":            "http://127.0.0.1:1/wechatpay/notify", // every notification is lost
	"PAPAYD_WECHATPAY_TIMEOUT":     "300ms",
}

// TestReconcilerResolvesWithoutNotifications: no notification ever reaches
// this papayd, and nobody calls refresh; the reconciler alone drives every
// record to the state WeChat has.
func TestReconcilerResolvesWithoutNotifications(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", fastReconciler)
	ctx := context.Background()

	// Signed while PAPAY.SIGN was lost.
	pre := presign(t, p, "oRecon-1")
	contractID := p.userSigns(pre.GetSessionId(), nil)
	a := waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	if a.GetContractId() != contractID {
		t.Fatalf("reconciled agreement %v", a)
	}

	// A deduction whose answer timed out.
	p.configurePayer("oRecon-1", map[string]any{"behavior": "SLOW", "delay_ms": 800})
	if c := createCharge(t, p, chargeReq("RECON-SLOW", contractID, 1200)); c.GetState() != papayv1.ChargeState_CHARGE_STATE_PENDING {
		t.Fatalf("charge %v", c)
	}
	waitCharge(t, p, "RECON-SLOW", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)

	// USERPAYING that settles later, unseen.
	p.configurePayer("oRecon-1", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 100})
	createCharge(t, p, chargeReq("RECON-LATER", contractID, 1300))
	waitCharge(t, p, "RECON-LATER", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)

	// USERPAYING that never settles is closed after the unpaid timeout.
	p.configurePayer("oRecon-1", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 600000})
	createCharge(t, p, chargeReq("RECON-NEVER", contractID, 1400))
	closed := waitCharge(t, p, "RECON-NEVER", papayv1.ChargeState_CHARGE_STATE_CLOSED)
	if o, _ := p.app.Sandbox().Order("RECON-NEVER"); o.TradeState != "CLOSED" || o.Deductions != 0 {
		t.Fatalf("WeChat side of the closed charge: %+v (local %v)", o, closed)
	}

	// Terminated inside WeChat; PAPAY.TERMINATE lost; the periodic check finds it.
	if _, err := p.app.Sandbox().UserTerminate(contractID); err != nil {
		t.Fatal(err)
	}
	got := waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_TERMINATED)
	if got.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER {
		t.Fatalf("terminated agreement %v", got)
	}

	// A session nobody signs becomes EXPIRED once it ends.
	exp, err := p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oRecon-2",
		SessionExpireTime: timestampIn(2500 * time.Millisecond)}) // whole seconds at WeChat: 1.5 s to 2.5 s
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, p, exp.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_EXPIRED)
}

// TestBackupWhileServing copies the database of a running papayd with the
// backup command and opens the copy as a data directory.
func TestBackupWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir)
	a := signed(t, p, "oBackup")
	createCharge(t, p, chargeReq("BACKUP-1", a.GetContractId(), 900))

	bin := filepath.Join(t.TempDir(), "papayd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	copyDir := t.TempDir()
	cmd := exec.Command(bin, "backup", filepath.Join(copyDir, "papayd.db"))
	cmd.Env = append(os.Environ(), "PAPAYD_DATA_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("papayd backup: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "backup", filepath.Join(copyDir, "papayd.db")).CombinedOutput(); err == nil {
		t.Fatalf("backup over an existing file succeeded: %s", out)
	}
	// The copy is a complete papayd data directory.
	if err := os.Rename(filepath.Join(dir, "sandbox"), filepath.Join(copyDir, "sandbox")); err != nil {
		t.Fatal(err)
	}
	p.stop()
	q := start(t, copyDir)
	if got := getCharge(t, q, "BACKUP-1", false); got.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge in the copy: %v", got)
	}
	if got := getByCode(t, q, a.GetOutContractCode()); got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED {
		t.Fatalf("agreement in the copy: %v", got)
	}
}
