package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// TestSandboxRestartKeepsState is issue 16's acceptance: a restarted sandbox
// still answers queries for contracts and orders made before the restart.
// papayd signs and charges, stops, starts again on the same data directory;
// GetAgreement and GetCharge with refresh (which query the simulator)
// answer as before, and the pre-restart charge can be refunded.
func TestSandboxRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startWith(t, dir, refundFast)
	a := signed(t, p, "oRestart-keeps")
	createCharge(t, p, chargeReq("RESTART-1", a.GetContractId(), 2500))
	charged := waitCharge(t, p, "RESTART-1", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
	p.stop()
	state := filepath.Join(dir, "sandbox", "state.json")
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sandbox state file: %v, %v", fi, err)
	}

	q := startWith(t, dir, refundFast)
	calls := len(q.wechatCalls())
	r, err := q.agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{
		OutContractCode: a.GetOutContractCode(), PlanId: planID, Refresh: true})
	if err != nil {
		t.Fatalf("GetAgreement refresh after the restart: %v", err)
	}
	if got := r.GetAgreement(); got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED || got.GetContractId() != a.GetContractId() {
		t.Fatalf("agreement after the restart: %v", got)
	}
	c := getCharge(t, q, "RESTART-1", true)
	if c.GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || c.GetTransactionId() != charged.GetTransactionId() {
		t.Fatalf("charge after the restart: %v, before %v", c, charged)
	}
	// The refreshes did ask the simulator, and it knew both.
	var contractQueried, orderQueried bool
	for _, call := range q.wechatCalls()[calls:] {
		switch {
		case call.Method == "GET" && strings.Contains(call.Path, a.GetContractId()):
			contractQueried = call.Status == 200
		case call.Method == "GET" && (strings.Contains(call.Path, "RESTART-1") || strings.Contains(call.Path, charged.GetTransactionId())):
			orderQueried = call.Status == 200
		}
	}
	if !contractQueried || !orderQueried {
		t.Fatalf("simulator queries after the restart: contract %v, order %v; calls %+v", contractQueried, orderQueried, q.wechatCalls()[calls:])
	}
	o, ok := q.app.Sandbox().Order("RESTART-1")
	if !ok || o.Deductions != 1 || o.TransactionID != charged.GetTransactionId() {
		t.Fatalf("simulator order after the restart: %+v %v", o, ok)
	}

	createRefund(t, q, refundReq("RESTART-1-R1", "RESTART-1", 1000))
	waitRefund(t, q, "RESTART-1-R1", papayv1.RefundState_REFUND_STATE_SUCCEEDED)
	if o, _ := q.app.Sandbox().Order("RESTART-1"); o.Refunded != 1000 {
		t.Fatalf("simulator order refunded %d", o.Refunded)
	}
}
