package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const presignPath = "/v3/global/papay/contracts/miniprogram-pre-entrust-sign"

// TestPresignRetryAfterLostSignature: the user signs inside WeChat, PAPAY.SIGN
// is dropped, the session expires, and the merchant presigns again with the
// same out_contract_code and parameters. papayd asks WeChat, records the
// signature and refuses the presign; the agreement is never lost, and the
// PAPAY.SIGN that arrives late finds it.
func TestPresignRetryAfterLostSignature(t *testing.T) {
	t.Parallel()
	// The reconciler must not find the signature first: the retry does.
	p := startWith(t, "", map[string]string{"PAPAYD_RECONCILE_FIRST_CHECK": "1h"})
	sb := p.app.Sandbox()
	ctx := context.Background()
	withFaults(t, sb, sandbox.FaultRule{Kind: sandbox.FaultDropNotification, EventType: "PAPAY.SIGN", Count: 1})

	req := &papayv1.CreatePresignSessionRequest{PlanId: planID, OutContractCode: "RETRY-SIGNED-1", Openid: "oRetry-signed",
		UserDisplayName: "Chan Tai Man", SessionExpireTime: timestampIn(2 * time.Second)}
	first, err := p.agreements.CreatePresignSession(ctx, req)
	if err != nil {
		t.Fatalf("CreatePresignSession: %v", err)
	}
	contractID := p.userSigns(first.GetSessionId(), nil)
	var dropped string
	eventually(t, "PAPAY.SIGN dropped", func() bool {
		for _, d := range sb.Deliveries() {
			if d.EventType == "PAPAY.SIGN" && d.Fault == sandbox.FaultDropNotification {
				dropped = d.NotificationID
			}
		}
		return dropped != ""
	})
	time.Sleep(time.Until(first.GetAgreement().GetSessionExpireTime().AsTime()) + 50*time.Millisecond)

	// The same request, with a new session expiry (the old one is past).
	req.SessionExpireTime = nil
	_, err = p.agreements.CreatePresignSession(ctx, req)
	code, reason, _ := statusDetails(err)
	if code != codes.AlreadyExists || reason != "OUT_CONTRACT_CODE_REUSED" || !strings.Contains(status.Convert(err).Message(), "SIGNED") {
		t.Errorf("retry of a signed presign: %v %q (%v), want ALREADY_EXISTS OUT_CONTRACT_CODE_REUSED saying SIGNED", code, reason, err)
	}
	if got := p.callsTo(presignPath); got[200] != 1 || len(got) != 1 {
		t.Errorf("presign calls by status %v, want the first one only", got)
	}

	byCode, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: req.GetOutContractCode(), PlanId: planID})
	if a := byCode.GetAgreement(); err != nil || a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED ||
		a.GetContractId() != contractID || a.GetSignedTime() == nil {
		t.Errorf("agreement after the retry = %v (%v), want SIGNED with contract %s", a, err, contractID)
	}
	if _, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: contractID}); err != nil {
		t.Errorf("GetAgreement by contract id: %v", err)
	}

	// WeChat sends the dropped PAPAY.SIGN after all.
	c, ok := sb.Contract(contractID)
	if !ok {
		t.Fatalf("the sandbox does not know contract %s", contractID)
	}
	h, body, err := sb.BuildNotification("PAPAY.SIGN", dropped, c.Resource("PAPAY.SIGN"))
	if err != nil {
		t.Fatal(err)
	}
	if st, ack := p.postNotification(h, body); st != http.StatusOK || ack["code"] != "SUCCESS" {
		t.Fatalf("late PAPAY.SIGN answered HTTP %d %v", st, ack)
	}
	n := p.notificationsFor(req.GetOutContractCode())
	if len(n) != 1 || n[0].ID != dropped || (n[0].Outcome != "NOOP" && n[0].Outcome != "APPLIED") {
		t.Fatalf("late PAPAY.SIGN recorded as %+v, want NOOP or APPLIED", n)
	}
}
