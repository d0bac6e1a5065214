package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

const planID = 4001

func getByCode(t *testing.T, p *papayd, code string) *papayv1.Agreement {
	t.Helper()
	resp, err := p.agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID})
	if err != nil {
		t.Fatalf("GetAgreement(%s): %v", code, err)
	}
	return resp.GetAgreement()
}

// waitState polls GetAgreement until the agreement is in state.
func waitState(t *testing.T, p *papayd, code string, state papayv1.AgreementState) *papayv1.Agreement {
	t.Helper()
	var a *papayv1.Agreement
	eventually(t, code+" "+state.String(), func() bool {
		a = getByCode(t, p, code)
		return a.GetState() == state
	})
	return a
}

// presign starts a mini program session through gRPC.
func presign(t *testing.T, p *papayd, openid string) *papayv1.CreatePresignSessionResponse {
	t.Helper()
	resp, err := p.agreements.CreatePresignSession(context.Background(), &papayv1.CreatePresignSessionRequest{
		PlanId: planID, Openid: openid, UserDisplayName: "Chan Tai Man",
	})
	if err != nil {
		t.Fatalf("CreatePresignSession: %v", err)
	}
	return resp
}

// signed runs presign and the user's signature to a SIGNED agreement.
func signed(t *testing.T, p *papayd, openid string) *papayv1.Agreement {
	t.Helper()
	resp := presign(t, p, openid)
	p.userSigns(resp.GetSessionId(), nil)
	return waitState(t, p, resp.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
}

func TestSigningFlowGRPC(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()

	resp := presign(t, p, "oUser-grpc-1")
	a := resp.GetAgreement()
	if resp.GetSessionId() == "" {
		t.Fatal("mini program presign answered no session_id")
	}
	if got, want := a.GetState(), papayv1.AgreementState_AGREEMENT_STATE_PENDING; got != want {
		t.Fatalf("state after presign = %v, want %v", got, want)
	}
	if n := len(a.GetOutContractCode()); n == 0 || n > 32 {
		t.Fatalf("generated out_contract_code %q has %d characters, want 1..32", a.GetOutContractCode(), n)
	}
	if a.GetChannel() != papayv1.SigningChannel_SIGNING_CHANNEL_MINI_PROGRAM || a.GetSubMchid() == "" || a.GetSpAppid() == "" {
		t.Fatalf("defaults not applied: channel %v sub_mchid %q sp_appid %q", a.GetChannel(), a.GetSubMchid(), a.GetSpAppid())
	}
	if a.GetSessionExpireTime() == nil {
		t.Fatal("no session_expire_time")
	}

	contractID := p.userSigns(resp.GetSessionId(), nil)
	byCode := waitState(t, p, a.GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
	if byCode.GetContractId() != contractID || byCode.GetSignedTime() == nil || byCode.GetOpenid() != "oUser-grpc-1" {
		t.Fatalf("signed agreement = %v, want contract %s with signed_time", byCode, contractID)
	}
	byID, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: contractID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(byCode, byID.GetAgreement(), protocmp.Transform()); diff != "" {
		t.Fatalf("lookup by contract id differs from lookup by code (-code +id):\n%s", diff)
	}
	signNotes := p.notificationsFor(a.GetOutContractCode())
	if len(signNotes) != 1 || signNotes[0].EventType != "PAPAY.SIGN" || signNotes[0].Outcome != "APPLIED" {
		t.Fatalf("notifications after signing = %+v, want one applied PAPAY.SIGN", signNotes)
	}

	term, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: contractID, TerminationNote: "user cancelled the plan"})
	if err != nil {
		t.Fatalf("TerminateAgreement: %v", err)
	}
	ta := term.GetAgreement()
	if ta.GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED ||
		ta.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_MERCHANT ||
		ta.GetTerminationNote() != "user cancelled the plan" || ta.GetTerminatedTime() == nil {
		t.Fatalf("after terminate: %v", ta)
	}
	// The PAPAY.TERMINATE that follows is recorded and changes nothing. (The
	// sandbox sends it at once, so it may even beat TerminateAgreement's own
	// write; then it applies the termination and the merchant's note is
	// added by TerminateAgreement: the end state is the same.)
	eventually(t, "PAPAY.TERMINATE recorded", func() bool { return len(p.notificationsFor(a.GetOutContractCode())) == 2 })
	if n := p.notificationsFor(a.GetOutContractCode())[1]; n.EventType != "PAPAY.TERMINATE" || (n.Outcome != "NOOP" && n.Outcome != "APPLIED") {
		t.Fatalf("terminate notification = %+v, want a recorded PAPAY.TERMINATE", n)
	}
	if diff := cmp.Diff(ta, getByCode(t, p, a.GetOutContractCode()), protocmp.Transform()); diff != "" {
		t.Fatalf("PAPAY.TERMINATE changed the agreement (-before +after):\n%s", diff)
	}
	// Every WeChat call is audited: method, path, status, Request-ID, duration.
	calls := p.wechatCalls()
	var got []string
	for _, c := range calls {
		if c.Path == "/v3/global/certificates" {
			continue // the certificate refresher's own calls
		}
		if c.RequestID == "" || c.Duration <= 0 {
			t.Errorf("audit row without Request-ID or duration: %+v", c)
		}
		got = append(got, fmt.Sprintf("%s %s %d", c.Method, c.Path, c.Status))
	}
	want := []string{
		"POST /v3/global/papay/contracts/miniprogram-pre-entrust-sign 200",
		"POST /v3/global/papay/contracts/" + contractID + "/terminate 204",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("audit of WeChat calls (-want +got):\n%s", diff)
	}
	// Terminating again answers the agreement as it is.
	again, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: contractID, TerminationNote: "again"})
	if err != nil {
		t.Fatalf("second TerminateAgreement: %v", err)
	}
	if diff := cmp.Diff(ta, again.GetAgreement(), protocmp.Transform()); diff != "" {
		t.Fatalf("second terminate changed the agreement:\n%s", diff)
	}
}

func TestUserTerminatesInWeChat(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oUser-user-term")
	if code := p.do(http.MethodPost, "/sandbox/v1/contracts/"+a.GetContractId()+":terminate", nil, nil); code != http.StatusOK {
		t.Fatalf("sandbox user terminate: HTTP %d", code)
	}
	got := waitState(t, p, a.GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_TERMINATED)
	if got.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER || got.GetTerminatedTime() == nil {
		t.Fatalf("user termination recorded as %v", got)
	}
	// The merchant can no longer terminate it at WeChat, but asking is harmless.
	resp, err := p.agreements.TerminateAgreement(context.Background(), &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "late"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAgreement().GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER {
		t.Fatalf("terminate of a user-terminated agreement changed its mode: %v", resp.GetAgreement())
	}
}

func TestDeclinedSessionStaysPending(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	resp := presign(t, p, "oUser-decline")
	if code := p.do(http.MethodPost, "/sandbox/v1/sessions/"+resp.GetSessionId()+":decline", nil, nil); code != http.StatusOK {
		t.Fatalf("sandbox decline: HTTP %d", code)
	}
	// WeChat notifies only successes: a signature after declining is refused,
	// and nothing reaches papayd.
	if code := p.do(http.MethodPost, "/sandbox/v1/sessions/"+resp.GetSessionId()+":sign", nil, nil); code == http.StatusOK {
		t.Fatal("the sandbox let a declined session be signed")
	}
	code := resp.GetAgreement().GetOutContractCode()
	if got := getByCode(t, p, code); got.GetState() != papayv1.AgreementState_AGREEMENT_STATE_PENDING {
		t.Fatalf("declined agreement state = %v, want PENDING", got.GetState())
	}
	if n := p.notificationsFor(code); len(n) != 0 {
		t.Fatalf("declined session produced notifications %+v", n)
	}
	// refresh asks WeChat, which has no contract: still PENDING while the
	// session lives.
	r, err := p.agreements.GetAgreement(context.Background(), &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID, Refresh: true})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if r.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_PENDING {
		t.Fatalf("refreshed declined agreement = %v", r.GetAgreement().GetState())
	}
}

// TestLogsHoldNoSecrets runs the signing flow and checks that papayd's log
// (at debug level) holds no key material, no signature and no decrypted
// payload field.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oSecretive-user")
	if _, err := p.agreements.TerminateAgreement(context.Background(), &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "n"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "PAPAY.TERMINATE recorded", func() bool { return len(p.notificationsFor(a.GetOutContractCode())) == 2 })
	// A rejected callback must not leak its signature either.
	h, body, err := p.app.Sandbox().BuildNotification("PAPAY.SIGN", "", []byte(`{"openid":"oSecretive-user"}`))
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Wechatpay-Serial", "UNKNOWN")
	p.postNotification(h, body)

	creds := p.app.Sandbox().Credentials()
	log := p.log.String()
	if !strings.Contains(log, "papayd serving") {
		t.Fatal("the log was not captured")
	}
	for what, secret := range map[string]string{
		"APIv3 key":           string(creds.APIv3Key),
		"private key PEM":     "PRIVATE KEY",
		"signature":           h.Get("Wechatpay-Signature"),
		"decrypted openid":    "oSecretive-user",
		"notification cipher": string(body[len(body)/2 : len(body)/2+24]),
	} {
		if strings.Contains(log, secret) {
			t.Errorf("papayd's log contains the %s", what)
		}
	}
}
