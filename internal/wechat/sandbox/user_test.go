package sandbox_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestUserSignsThroughControlAPI(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	id := e.presign(t, "h5", e.presignBody("C700", "", recv.URL))

	status, out := e.control(t, http.MethodPost, "/sandbox/v1/sessions/"+id+":sign",
		map[string]string{"openid": "oH5User", "client_ip": "119.145.83.6"})
	if status != http.StatusOK {
		t.Fatalf("sign: %d %v", status, out)
	}
	contractID, _ := out["contract_id"].(string)
	if len(contractID) == 0 || len(contractID) > 64 || out["out_contract_code"] != "C700" || out["plan_id"] != float64(planID) {
		t.Fatalf("sign answer %v", out)
	}

	n := recv.next(t)
	c, _ := e.sb.Contract(contractID)
	want := map[string]any{
		"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "sp_appid": e.creds.SPAppID,
		"sub_appid": e.creds.SubAppID, "out_contract_code": "C700", "plan_id": float64(planID),
		"contract_id": contractID, "openid": "oH5User",
		"operate_time": c.SignedTime.In(time.FixedZone("", 8*3600)).Format(time.RFC3339),
	}
	if diff := cmp.Diff(want, n.content); diff != "" {
		t.Errorf("PAPAY.SIGN payload (-want +got):\n%s", diff)
	}
	if n.req.EventType != sandbox.EventSign || len(n.req.ID) == 0 || len(n.req.ID) > 32 || n.req.CreateTime == nil {
		t.Errorf("envelope %+v", n.req)
	}
	for _, h := range []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Request-ID"} {
		if n.header.Get(h) == "" {
			t.Errorf("notification lacks %s", h)
		}
	}
	if got := n.header.Get("Wechatpay-Signature-Type"); got != "WECHATPAY2-SHA256-RSA2048" {
		t.Errorf("Wechatpay-Signature-Type %q", got)
	}
	log, err := e.sb.WaitDelivered(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 1 || log[0].NotificationID != n.req.ID || log[0].StatusCode != 200 || !log[0].Final {
		t.Errorf("delivery log %+v", log)
	}

	status, out = e.control(t, http.MethodGet, "/sandbox/v1/contracts/"+contractID, nil)
	if status != http.StatusOK || out["state"] != "SIGNED" || out["openid"] != "oH5User" {
		t.Errorf("control contract: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/notifications", nil)
	if list, _ := out["deliveries"].([]any); status != http.StatusOK || len(list) != 1 {
		t.Errorf("control notifications: %d %v", status, out)
	}
}

func TestControlSessionErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	signed := e.presign(t, "miniprogram", e.presignBody("C710", "oA", e.sinkURL))
	h5 := e.presign(t, "h5", e.presignBody("C711", "", e.sinkURL))
	mp := e.presign(t, "app", e.presignBody("C712", "oB", e.sinkURL))
	if status, out := e.control(t, http.MethodPost, "/sandbox/v1/sessions/"+signed+":sign", nil); status != http.StatusOK {
		t.Fatalf("sign: %d %v", status, out)
	}
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"sign twice", http.MethodPost, "/sandbox/v1/sessions/" + signed + ":sign", nil, 409, "SESSION_CLOSED"},
		{"decline signed", http.MethodPost, "/sandbox/v1/sessions/" + signed + ":decline", nil, 409, "SESSION_CLOSED"},
		{"unknown session", http.MethodPost, "/sandbox/v1/sessions/000:sign", nil, 404, "NOT_FOUND"},
		{"unknown verb", http.MethodPost, "/sandbox/v1/sessions/" + h5 + ":approve", nil, 404, "NOT_FOUND"},
		{"h5 ip mismatch", http.MethodPost, "/sandbox/v1/sessions/" + h5 + ":sign", map[string]string{"client_ip": "10.0.0.1"}, 403, "USER_MISMATCH"},
		{"other openid", http.MethodPost, "/sandbox/v1/sessions/" + mp + ":sign", map[string]string{"openid": "oC"}, 403, "USER_MISMATCH"},
		{"bad body", http.MethodPost, "/sandbox/v1/sessions/" + mp + ":sign", "[", 400, "INVALID_ARGUMENT"},
		{"unknown contract", http.MethodPost, "/sandbox/v1/contracts/Wx0:terminate", nil, 404, "NOT_FOUND"},
		{"bad mode", http.MethodPost, "/sandbox/v1/contracts/Wx0:terminate", map[string]string{"mode": "MERCHANT"}, 400, "INVALID_ARGUMENT"},
		{"unknown endpoint", http.MethodGet, "/sandbox/v1/plans", nil, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		status, out := e.control(t, tt.method, tt.path, tt.body)
		if status != tt.status || out["code"] != tt.code {
			t.Errorf("%s: %d %v, want %d %s", tt.name, status, out, tt.status, tt.code)
		}
	}
	// The failed attempts left the H5 and APP sessions pending.
	for _, id := range []string{h5, mp} {
		if sess, _ := e.sb.Session(id); sess.State != sandbox.SessionPending {
			t.Errorf("session %s is %s, want PENDING", id, sess.State)
		}
	}
}

func TestDeclineSendsNothing(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{TerminationNotifyURL: recv.URL})
	id := e.presign(t, "web", e.presignBody("C720", "", recv.URL))
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/sessions/"+id+":decline", nil)
	if status != http.StatusOK || out["state"] != "DECLINED" {
		t.Fatalf("decline: %d %v", status, out)
	}
	if _, err := e.sb.SignSession(id, sandbox.User{}); !errors.Is(err, sandbox.ErrSessionClosed) {
		t.Errorf("sign after decline: %v, want ErrSessionClosed", err)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if log := e.sb.Deliveries(); len(log) != 0 {
		t.Errorf("deliveries after decline: %+v", log)
	}
	select {
	case n := <-recv.got:
		t.Errorf("notification after decline: %+v", n.req)
	default:
	}
}

func TestUserAndPlatformTerminate(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	planRecv := newReceiver(t, creds, certVerifier(creds))
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{
		TerminationNotifyURL:      recv.URL,
		PlanTerminationNotifyURLs: map[int64]string{777: planRecv.URL},
	})
	user := e.signedContract(t, "C730", "oU", e.sinkURL)
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/contracts/"+user.ContractID+":terminate", nil)
	if status != http.StatusOK || out["state"] != "TERMINATED" || out["termination_mode"] != "USER" {
		t.Fatalf("user terminate: %d %v", status, out)
	}
	n := recv.next(t)
	if n.req.EventType != sandbox.EventTerminate || n.content["contract_termination_mode"] != "USER" ||
		n.content["contract_id"] != user.ContractID {
		t.Errorf("PAPAY.TERMINATE %+v %v", n.req, n.content)
	}
	status, out = e.control(t, http.MethodPost, "/sandbox/v1/contracts/"+user.ContractID+":terminate", nil)
	if status != http.StatusConflict || out["code"] != "CONTRACT_TERMINATED" {
		t.Errorf("second terminate: %d %v", status, out)
	}

	body := e.presignBody("C731", "oP", e.sinkURL)
	body["plan_id"] = 777
	sess := e.presign(t, "miniprogram", body)
	platform, err := e.sb.SignSession(sess, sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sb.PlatformTerminate(platform.ContractID); err != nil {
		t.Fatal(err)
	}
	n = planRecv.next(t)
	if n.content["contract_termination_mode"] != "PLATFORM" || n.content["plan_id"] != float64(777) {
		t.Errorf("plan 777 PAPAY.TERMINATE %v", n.content)
	}
	if _, err := e.sb.UserTerminate(platform.ContractID); !errors.Is(err, sandbox.ErrContractTerminated) {
		t.Errorf("UserTerminate after PLATFORM: %v", err)
	}
}
