package wechat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// notifyNow is the parser clock in tests: 2026-01-01T00:00:00Z.
var notifyNow = time.Unix(1767225600, 0)

const signPlaintext = `{"sp_mchid":"10000091","sub_mchid":"10000097","out_contract_code":"100001256","plan_id":123,
"contract_id":"Wx15463511252015071056489715","sp_appid":"wxcbda96de0b165486","sub_appid":"wxcbda96de0b165484",
"openid":"ouFhd5X9s9WteC3eWRjXV3lea123","operate_time":"2015-09-01T10:00:00+08:00","contract_expired_time":"2030-01-01T00:00:00+08:00"}`

// notif describes one notification to build; zero fields take defaults.
type notif struct {
	id, eventType, createTime string
	plaintext                 string
	apiKey                    []byte
	aeadNonce, algorithm      string
	noResource                bool
	ts                        time.Time
	sign                      signing
}

// build returns the signed headers and body.
func (n notif) build() (http.Header, []byte) {
	if n.apiKey == nil {
		n.apiKey = testAPIv3Key
	}
	if n.aeadNonce == "" {
		n.aeadNonce = "0123456789ab"
	}
	if n.algorithm == "" {
		n.algorithm = aeadAlgorithm
	}
	if n.ts.IsZero() {
		n.ts = notifyNow
	}
	env := map[string]any{"id": n.id, "create_time": n.createTime, "event_type": n.eventType,
		"resource_type": "encrypt-resource", "summary": "签约成功"}
	if !n.noResource {
		env["resource"] = map[string]any{"original_type": "contract", "algorithm": n.algorithm,
			"ciphertext": seal(n.apiKey, n.aeadNonce, "papay", []byte(n.plaintext)), "associated_data": "papay", "nonce": n.aeadNonce}
	}
	body, err := marshal(env)
	if err != nil {
		panic(err)
	}
	h := http.Header{"Wechatpay-Signature-Type": {signatureType}}
	signAnswer(h, n.sign, body, n.ts)
	return h, body
}

// seal encrypts like WeChat: base64(AES-GCM ciphertext ‖ tag). A nonce
// that is not 12 bytes is sealed with a 12-byte prefix of it, padded.
func seal(key []byte, nonce, aad string, plain []byte) string {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	n := []byte((nonce + "000000000000")[:12])
	return base64.StdEncoding.EncodeToString(gcm.Seal(nil, n, plain, []byte(aad)))
}

func newTestParser(t testing.TB, keys *Keys) *NotificationParser {
	t.Helper()
	if keys == nil {
		var err error
		if keys, err = NewKeys([]*x509.Certificate{platformCert}, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewNotificationParser(keys, testAPIv3Key, func() time.Time { return notifyNow })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("", 8*3600)
	tests := []struct {
		name string
		n    notif
		want service.Notification
	}{
		{"sign", notif{id: "EV-1", eventType: "PAPAY.SIGN", createTime: "2015-05-20T13:29:35+08:00", plaintext: signPlaintext},
			service.Notification{ID: "EV-1", SpMchID: "10000091", SubMchID: "10000097", EventType: "PAPAY.SIGN", Summary: "签约成功",
				CreateTime: time.Date(2015, 5, 20, 13, 29, 35, 0, cst), Resource: []byte(signPlaintext),
				Contract: &service.ContractEvent{SpMchID: "10000091", Merchant: testMerchant, OutContractCode: "100001256",
					ContractID: "Wx15463511252015071056489715", PlanID: 123, OpenID: "ouFhd5X9s9WteC3eWRjXV3lea123",
					OperateTime: time.Date(2015, 9, 1, 10, 0, 0, 0, cst)}}},
		{"terminate, plan id string, sub_openid, compact create_time", notif{id: "EV-2", eventType: "PAPAY.TERMINATE", createTime: "20180225112233",
			plaintext: `{"sub_mchid":"10000097","sp_appid":"wxsp","sub_appid":"wxsub","contract_id":"C9","plan_id":"66",
				"sp_openid":"o-sp","sub_openid":"o-sub","contract_termination_mode":"USER","operate_time":"garbage"}`},
			service.Notification{ID: "EV-2", SubMchID: "10000097", EventType: "PAPAY.TERMINATE", Summary: "签约成功",
				CreateTime: time.Date(2018, 2, 25, 11, 22, 33, 0, cst),
				Contract: &service.ContractEvent{Merchant: service.Merchant{SubMchID: "10000097", SPAppID: "wxsp", SubAppID: "wxsub"},
					ContractID: "C9", PlanID: 66, OpenID: "o-sub", TerminationMode: service.TerminatedByUser}}},
		{"sp_openid without sub app", notif{id: "EV-3", eventType: "PAPAY.SIGN", createTime: "not a time",
			plaintext: `{"out_contract_code":"X","plan_id":null,"sp_openid":"o-sp","sub_openid":"o-sub"}`},
			service.Notification{ID: "EV-3", EventType: "PAPAY.SIGN", Summary: "签约成功",
				Contract: &service.ContractEvent{OutContractCode: "X", OpenID: "o-sp"}}},
		{"other event keeps plaintext only", notif{id: "EV-4", eventType: "COUPON.USE", plaintext: `not even json`},
			service.Notification{ID: "EV-4", EventType: "COUPON.USE", Summary: "签约成功", Resource: []byte(`not even json`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, body := tt.n.build()
			got, err := newTestParser(t, nil).Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.want.Resource == nil {
				tt.want.Resource = []byte(tt.n.plaintext)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("notification (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseKeyModes(t *testing.T) {
	t.Parallel()
	pubOnly, err := NewKeys(nil, testPublicKeyID, &publicModeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	both, err := NewKeys([]*x509.Certificate{platformCert}, testPublicKeyID, &publicModeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		keys *Keys
		sign signing
		ok   bool
	}{
		{"public key", pubOnly, signPublicKey, true},
		{"public key, cert-signed", pubOnly, signPlatform, false},
		{"migration, key-signed", both, signPublicKey, true},
		{"migration, cert-signed", both, signPlatform, true},
	}
	for _, tt := range tests {
		h, body := notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: tt.sign}.build()
		_, err := newTestParser(t, tt.keys).Parse(h, body)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, service.ErrNotificationUnauthentic)) {
			t.Errorf("%s: err %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestParseUnauthentic(t *testing.T) {
	t.Parallel()
	valid := notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext}
	tests := []struct {
		name string
		edit func(h http.Header, body []byte) (http.Header, []byte)
		n    notif
	}{
		{"tampered body", func(h http.Header, b []byte) (http.Header, []byte) {
			return h, []byte(strings.Replace(string(b), "EV-1", "EV-2", 1))
		}, valid},
		{"body with trailing newline", func(h http.Header, b []byte) (http.Header, []byte) { return h, append(b, '\n') }, valid},
		{"tampered signature", func(h http.Header, b []byte) (http.Header, []byte) {
			sig := []byte(h.Get("Wechatpay-Signature"))
			sig[10] ^= 1
			h.Set("Wechatpay-Signature", string(sig))
			return h, b
		}, valid},
		{"signature not base64", setHeader("Wechatpay-Signature", "%%%"), valid},
		{"probe signature", setHeader("Wechatpay-Signature", "WECHATPAY/SIGNTEST/abc"), valid},
		{"unknown serial", setHeader("Wechatpay-Serial", "0123ABCD"), valid},
		{"forged", nil, notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: signForged}},
		{"unsigned", nil, notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: signNone}},
		{"missing serial", setHeader("Wechatpay-Serial", ""), valid},
		{"missing signature", setHeader("Wechatpay-Signature", " "), valid},
		{"missing timestamp", setHeader("Wechatpay-Timestamp", ""), valid},
		{"missing nonce", setHeader("Wechatpay-Nonce", ""), valid},
		{"timestamp not integer", setHeader("Wechatpay-Timestamp", "1767225600.0"), valid},
		{"wrong signature type", setHeader("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3"), valid},
		{"stale by 301s", nil, notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext, ts: notifyNow.Add(-301 * time.Second)}},
		{"future by 301s", nil, notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext, ts: notifyNow.Add(301 * time.Second)}},
		{"stale by 10 min", nil, notif{id: "EV-1", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: signStale}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, body := tt.n.build()
			if tt.edit != nil {
				h, body = tt.edit(h, body)
			}
			_, err := newTestParser(t, nil).Parse(h, body)
			if !errors.Is(err, service.ErrNotificationUnauthentic) {
				t.Errorf("err %v, want ErrNotificationUnauthentic", err)
			}
		})
	}
}

func setHeader(k, v string) func(http.Header, []byte) (http.Header, []byte) {
	return func(h http.Header, b []byte) (http.Header, []byte) {
		h.Set(k, v)
		return h, b
	}
}

func TestParseTimestampWindow(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-300 * time.Second, -299 * time.Second, 0, 299 * time.Second, 300 * time.Second} {
		h, body := notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, ts: notifyNow.Add(d)}.build()
		if _, err := newTestParser(t, nil).Parse(h, body); err != nil {
			t.Errorf("skew %v: %v, want accepted", d, err)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    notif
	}{
		{"wrong APIv3 key", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, apiKey: []byte("ffffffffffffffffffffffffffffffff")}},
		{"nonce 11 bytes", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, aeadNonce: "0123456789a"}},
		{"nonce 13 bytes", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, aeadNonce: "0123456789abc"}},
		{"missing resource", notif{id: "EV", eventType: "PAPAY.SIGN", noResource: true}},
		{"missing id", notif{eventType: "PAPAY.SIGN", plaintext: signPlaintext}},
		{"other algorithm", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext, algorithm: "AEAD_SM4_GCM"}},
		{"non-JSON plaintext", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: `openid=o-secret-plaintext`}},
		{"null plaintext", notif{id: "EV", eventType: "PAPAY.TERMINATE", plaintext: `null`}},
		{"array plaintext", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: `["o-secret-plaintext"]`}},
		{"no contract named", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: `{"openid":"o-secret-plaintext"}`}},
		{"plan id not a number", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: `{"contract_id":"C","plan_id":"o-secret-plaintext"}`}},
		{"openid not a string", notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: `{"contract_id":"C","openid":["o-secret-plaintext"]}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, body := tt.n.build()
			_, err := newTestParser(t, nil).Parse(h, body)
			if !errors.Is(err, service.ErrNotificationMalformed) {
				t.Fatalf("err %v, want ErrNotificationMalformed", err)
			}
			if strings.Contains(err.Error(), "o-secret") {
				t.Errorf("error text quotes the plaintext: %v", err)
			}
		})
	}
}

// TestParseHostileSigned feeds validly signed hostile bodies: they reach
// the post-signature code, which must answer with a sentinel, not panic.
func TestParseHostileSigned(t *testing.T) {
	t.Parallel()
	bodies := []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"id":"E"}`, `{"id":"E","resource":null}`, `{"id":"E","resource":[]}`,
		`{"id":"E","resource":{}}`, `{"id":1,"resource":{}}`,
		`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"","ciphertext":""}}`,
		`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789ab","ciphertext":""}}`,
		`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789ab","ciphertext":"AAAA"}}`,
		`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"` + strings.Repeat("n", 1<<16) + `","ciphertext":"AAAA"}}`,
		`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"日本語日本","ciphertext":"AAAA"}}`,
		`{"id":"E","create_time":{"a":1},"event_type":"PAPAY.SIGN","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789ab","ciphertext":"` +
			strings.Repeat("A", 64) + `"}}`,
		"\xff\xfe{",
	}
	p := newTestParser(t, nil)
	for _, b := range bodies {
		h := http.Header{}
		signAnswer(h, signPlatform, []byte(b), notifyNow)
		_, err := p.Parse(h, []byte(b))
		if !errors.Is(err, service.ErrNotificationMalformed) {
			t.Errorf("body %.80q: err %v, want ErrNotificationMalformed", b, err)
		}
	}
	for _, h := range []http.Header{nil, {}, {"Wechatpay-Timestamp": {"99999999999999999999"}, "Wechatpay-Serial": {"x"}, "Wechatpay-Nonce": {"n"}, "Wechatpay-Signature": {"s"}}} {
		if _, err := p.Parse(h, nil); !errors.Is(err, service.ErrNotificationUnauthentic) {
			t.Errorf("headers %v: err %v, want ErrNotificationUnauthentic", h, err)
		}
	}
}

func TestParseConcurrent(t *testing.T) {
	t.Parallel()
	p := newTestParser(t, nil)
	h, body := notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext}.build()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := p.Parse(h, body); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { _ = p.keys.SetCertificates([]*x509.Certificate{platformCert, rotatedCert}) }()
	wg.Wait()
}

func TestNewNotificationParser(t *testing.T) {
	t.Parallel()
	keys, err := NewKeys([]*x509.Certificate{platformCert}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return notifyNow }
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewNotificationParser(keys, make([]byte, n), now); err == nil {
			t.Errorf("a %d-byte APIv3 key was accepted", n)
		}
	}
	if _, err := NewNotificationParser(nil, testAPIv3Key, now); err == nil {
		t.Error("nil keys accepted")
	}
	if _, err := NewNotificationParser(keys, testAPIv3Key, nil); err == nil {
		t.Error("nil clock accepted")
	}
	key := append([]byte(nil), testAPIv3Key...)
	p, err := NewNotificationParser(keys, key, now)
	if err != nil {
		t.Fatal(err)
	}
	key[0] ^= 1 // the parser keeps its own copy
	h, body := notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext}.build()
	if _, err := p.Parse(h, body); err != nil {
		t.Errorf("Parse after the caller changed its key slice: %v", err)
	}
}

// The TRANSACTION.SUCCESS resource is decoded once, its scope with it; the
// scope is still decodeScope's, whatever the merchant fields hold.
func TestTransactionEventScope(t *testing.T) {
	t.Parallel()
	for _, plain := range []string{
		`{"sp_mchid":"SP","sub_mchid":"SUB","out_trade_no":"T1"}`,
		`{"mchid":"M","out_trade_no":"T1"}`,
		`{"sp_mchid":"","mchid":"M","sub_mchid":null,"out_trade_no":"T1"}`,
		`{"sp_mchid":12,"sub_mchid":"SUB","out_trade_no":"T1"}`,
		`{"sp_mchid":"SP","mchid":{"a":1},"sub_mchid":"SUB","out_trade_no":"T1"}`,
		`{"sp_mchid":["SP"],"sp_mchid":"SP","out_trade_no":"T1"}`,
		`{"SP_MCHID":"SP\u00e9","Sub_Mchid":"S\"UB","out_trade_no":"T1"}`,
		`{"sp_mchid":null,"mchid":true,"out_trade_no":"T1"}`,
	} {
		_, got, err := decodeTransactionEvent([]byte(plain))
		if err != nil {
			t.Errorf("%s: %v", plain, err)
			continue
		}
		if want := decodeScope([]byte(plain)); got != want {
			t.Errorf("%s: scope %+v, want %+v", plain, got, want)
		}
	}
	for _, plain := range []string{`null`, `[]`, `{"sub_mchid":1,"out_trade_no":"T1"}`, `{"sp_mchid":"SP"}`} {
		if _, _, err := decodeTransactionEvent([]byte(plain)); !errors.Is(err, service.ErrNotificationMalformed) {
			t.Errorf("%s: err %v, want malformed", plain, err)
		}
	}
}
