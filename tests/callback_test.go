package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// callbackFixture is a running papayd with one PENDING agreement, and the
// pieces to forge WeChat callbacks about it.
type callbackFixture struct {
	*papayd
	sb    *sandbox.Sandbox
	creds *sandbox.Credentials
	code  string
}

func newCallbackFixture(t *testing.T) *callbackFixture {
	p := start(t, "")
	f := &callbackFixture{papayd: p, sb: p.app.Sandbox(), creds: p.app.Sandbox().Credentials()}
	f.code = presign(t, p, "oCallback").GetAgreement().GetOutContractCode()
	return f
}

// resource is a PAPAY.* payload about the fixture's agreement.
func (f *callbackFixture) resource(contractID, mode string) sandbox.ContractResource {
	return sandbox.ContractResource{
		SPMchID: f.creds.MchID, SubMchID: f.creds.SubMchID, SPAppID: f.creds.SPAppID,
		OutContractCode: f.code, PlanID: planID, ContractID: contractID, OpenID: "oCallback",
		OperateTime: time.Now().Format(time.RFC3339), ContractTerminationMode: sandbox.TerminationMode(mode),
	}
}

// build returns a correctly signed and encrypted notification.
func (f *callbackFixture) build(t *testing.T, event, id string, resource any) (http.Header, []byte) {
	t.Helper()
	h, body, err := f.sb.BuildNotification(event, id, resource)
	if err != nil {
		t.Fatal(err)
	}
	return h, body
}

// resign signs body as the platform would, at timestamp ts.
func (f *callbackFixture) resign(t *testing.T, key *rsa.PrivateKey, serial string, ts time.Time, body []byte) http.Header {
	t.Helper()
	h, err := sandbox.SignatureHeaders(key, serial, ts.Unix(), "n0nce"+ts.Format("150405"), body)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f *callbackFixture) state(t *testing.T) *papayv1.Agreement {
	return getByCode(t, f.papayd, f.code)
}

func TestForgedAndBrokenCallbacksChangeNothing(t *testing.T) {
	t.Parallel()
	f := newCallbackFixture(t)
	before := f.state(t)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := []byte(strings.Repeat("k", 32))
	now := time.Now()

	cases := []struct {
		name   string
		make   func() (http.Header, []byte)
		status int
	}{
		{"tampered signature", func() (http.Header, []byte) {
			h, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged1", ""))
			sig := []byte(h.Get("Wechatpay-Signature"))
			sig[10] ^= 0x01
			h.Set("Wechatpay-Signature", string(sig))
			return h, b
		}, 401},
		{"tampered body", func() (http.Header, []byte) {
			h, b := f.build(t, "PAPAY.SIGN", "EV-original", f.resource("WxForged2", ""))
			return h, bytes.Replace(b, []byte("EV-original"), []byte("EV-replaced"), 1)
		}, 401},
		{"unknown serial", func() (http.Header, []byte) {
			h, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged3", ""))
			h.Set("Wechatpay-Serial", "0123456789ABCDEF0123456789ABCDEF01234567")
			return h, b
		}, 401},
		{"signed by another key under the platform serial", func() (http.Header, []byte) {
			_, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged4", ""))
			return f.resign(t, attacker, f.creds.PlatformSerial, now, b), b
		}, 401},
		{"stale timestamp", func() (http.Header, []byte) {
			_, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged5", ""))
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now.Add(-6*time.Minute), b), b
		}, 401},
		{"future timestamp", func() (http.Header, []byte) {
			_, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged6", ""))
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now.Add(6*time.Minute), b), b
		}, 401},
		{"no signature headers", func() (http.Header, []byte) {
			_, b := f.build(t, "PAPAY.SIGN", "", f.resource("WxForged7", ""))
			return http.Header{"Content-Type": {"application/json"}}, b
		}, 401},
		{"ciphertext under the wrong APIv3 key", func() (http.Header, []byte) {
			plain, err := json.Marshal(f.resource("WxForged8", ""))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := sandbox.EncryptResource(otherKey, plain, "papay")
			if err != nil {
				t.Fatal(err)
			}
			b := mustJSON(t, sandbox.Notification{ID: "EV-wrongkey", CreateTime: now.Format(time.RFC3339),
				ResourceType: "encrypt-resource", EventType: "PAPAY.SIGN", Resource: enc})
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now, b), b
		}, 400},
		{"signed body that is not JSON", func() (http.Header, []byte) {
			b := []byte("id=EV-1&event_type=PAPAY.SIGN")
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now, b), b
		}, 400},
		{"signed JSON without resource", func() (http.Header, []byte) {
			b := []byte(`{"id":"EV-nores","event_type":"PAPAY.SIGN","resource_type":"encrypt-resource"}`)
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now, b), b
		}, 400},
		{"signed payload that is not a contract", func() (http.Header, []byte) {
			h, b := f.build(t, "PAPAY.SIGN", "", []byte("not json at all"))
			return h, b
		}, 400},
		{"oversized body", func() (http.Header, []byte) {
			b := append([]byte(`{"id":"EV-big","pad":"`), bytes.Repeat([]byte("x"), 200<<10)...)
			b = append(b, `"}`...)
			return f.resign(t, f.creds.PlatformKey, f.creds.PlatformSerial, now, b), b
		}, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, body := tc.make()
			status, ack := f.postNotification(h, body)
			if status != tc.status || ack["code"] != "FAIL" || ack["message"] == "" {
				t.Fatalf("HTTP %d %v, want %d with a FAIL body", status, ack, tc.status)
			}
		})
	}
	if diff := cmp.Diff(before, f.state(t), protocmp.Transform()); diff != "" {
		t.Fatalf("a rejected callback changed the agreement:\n%s", diff)
	}
	if n := f.notifications(); len(n) != 0 {
		t.Fatalf("rejected callbacks were recorded: %+v", n)
	}
	// A GET is not a callback.
	if code := f.do(http.MethodGet, "/wechatpay/notify", nil, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /wechatpay/notify: HTTP %d", code)
	}
}

func TestDuplicateCallbacksApplyOnce(t *testing.T) {
	t.Parallel()
	f := newCallbackFixture(t)

	h, body := f.build(t, "PAPAY.SIGN", "EV-sign-1", f.resource("WxDup1", ""))
	if status, ack := f.postNotification(h, body); status != 200 || ack["code"] != "SUCCESS" {
		t.Fatalf("first delivery: HTTP %d %v", status, ack)
	}
	signedA := f.state(t)
	if signedA.GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED || signedA.GetContractId() != "WxDup1" {
		t.Fatalf("after PAPAY.SIGN: %v", signedA)
	}
	// WeChat retries the same notification: acknowledged, nothing changes.
	for range 3 {
		if status, ack := f.postNotification(h, body); status != 200 || ack["code"] != "SUCCESS" {
			t.Fatalf("duplicate delivery: HTTP %d %v", status, ack)
		}
	}
	if diff := cmp.Diff(signedA, f.state(t), protocmp.Transform()); diff != "" {
		t.Fatalf("a duplicate changed the agreement:\n%s", diff)
	}

	// Ten concurrent deliveries of one PAPAY.TERMINATE: one transition.
	h, body = f.build(t, "PAPAY.TERMINATE", "EV-term-1", f.resource("WxDup1", "USER"))
	var wg sync.WaitGroup
	statuses := make([]int, 10)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = f.postNotification(h, body)
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("concurrent delivery %d: HTTP %d", i, s)
		}
	}
	got := f.notifications()
	want := []notification{
		{ID: "EV-sign-1", EventType: "PAPAY.SIGN", Outcome: "APPLIED", ContractID: "WxDup1", OutContractCode: f.code},
		{ID: "EV-term-1", EventType: "PAPAY.TERMINATE", Outcome: "APPLIED", ContractID: "WxDup1", OutContractCode: f.code},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("notification records (-want +got):\n%s", diff)
	}
	if a := f.state(t); a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED ||
		a.GetTerminationMode() != papayv1.TerminationMode_TERMINATION_MODE_USER {
		t.Fatalf("after PAPAY.TERMINATE: %v", a)
	}
}

func TestCallbackForUnknownAgreementIsKept(t *testing.T) {
	t.Parallel()
	f := newCallbackFixture(t)
	r := f.resource("WxElsewhere", "")
	r.OutContractCode = "NOT-OURS-1"
	h, body := f.build(t, "PAPAY.SIGN", "EV-unknown-1", r)
	if status, ack := f.postNotification(h, body); status != 200 || ack["code"] != "SUCCESS" {
		t.Fatalf("HTTP %d %v", status, ack)
	}
	want := []notification{{ID: "EV-unknown-1", EventType: "PAPAY.SIGN", Outcome: "UNMATCHED", ContractID: "WxElsewhere", OutContractCode: "NOT-OURS-1"}}
	if diff := cmp.Diff(want, f.notifications()); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	// Our own agreement is untouched.
	if a := f.state(t); a.GetState() != papayv1.AgreementState_AGREEMENT_STATE_PENDING {
		t.Fatalf("unrelated notification changed our agreement: %v", a)
	}
}
