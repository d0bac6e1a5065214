package wechat

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/papayd/papayd/internal/service"
)

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzParse from fuzzSeeds")

// fuzzInput is one FuzzParse input. Mode (mod 3) says how far it gets:
//
//	0: headers and body exactly as given (mostly rejected before the signature);
//	1: body as given, validly signed with platformKey (reaches the envelope);
//	2: a signed envelope around plaintext, encrypted with the test APIv3
//	   key, with ts as create_time (reaches decryption and the contract).
type fuzzInput struct {
	mode                                             byte
	body                                             []byte
	ts, nonce, serial, signature, sigType, eventType string
	plaintext                                        []byte
}

// request builds the headers and body; modes 1 and 2 sign with key, whose
// certificate has serial.
func (in fuzzInput) request(key *rsa.PrivateKey, keySerial string) (http.Header, []byte) {
	body, ts, nonce, serial, signature := in.body, in.ts, in.nonce, in.serial, in.signature
	if in.mode%3 == 2 {
		env := map[string]any{"id": "EV-FUZZ", "create_time": in.ts, "event_type": in.eventType, "summary": "fuzz",
			"resource": map[string]any{"algorithm": aeadAlgorithm, "nonce": "0123456789ab", "associated_data": "papay",
				"ciphertext": seal(testAPIv3Key, "0123456789ab", "papay", in.plaintext)}}
		var err error
		if body, err = marshal(env); err != nil {
			panic(err)
		}
	}
	if in.mode%3 != 0 {
		ts, serial = strconv.FormatInt(notifyNow.Unix(), 10), keySerial
		if nonce = strings.TrimSpace(nonce); nonce == "" {
			nonce = "n"
		}
		signature = sign(key, ts+"\n"+nonce+"\n"+string(body)+"\n")
	}
	h := http.Header{}
	for k, v := range map[string]string{"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
		"Wechatpay-Signature": signature, "Wechatpay-Signature-Type": in.sigType} {
		h[k] = []string{v}
	}
	return h, body
}

func FuzzParse(f *testing.F) {
	// Self-signing uses a 1024-bit key (five times faster than platformKey)
	// known under its own serial; the committed mode-0 seeds are signed
	// with platformKey.
	fuzzKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	const fuzzSerial = "F0220000000000000000000000000000000000F0"
	keys, err := NewKeys([]*x509.Certificate{platformCert, mustCert(fuzzKey, fuzzSerial, notifyNow)}, "", nil)
	if err != nil {
		f.Fatal(err)
	}
	p := newTestParser(f, keys)
	// The on-demand path runs too: the hook learns nothing.
	p.SetUnknownSerialHook(func(context.Context, string) bool { return false })
	f.Fuzz(func(t *testing.T, mode byte, body []byte, ts, nonce, serial, signature, sigType, eventType string, plaintext []byte) {
		in := fuzzInput{mode, body, ts, nonce, serial, signature, sigType, eventType, plaintext}
		h, b := in.request(fuzzKey, fuzzSerial)
		n, err := p.Parse(h, b)
		if err != nil {
			if !errors.Is(err, service.ErrNotificationUnauthentic) && !errors.Is(err, service.ErrNotificationMalformed) {
				t.Fatalf("error %v wraps neither notification sentinel", err)
			}
			selfSigned := mode%3 != 0 && (strings.TrimSpace(sigType) == "" || strings.TrimSpace(sigType) == signatureType)
			if selfSigned && errors.Is(err, service.ErrNotificationUnauthentic) {
				t.Fatalf("validly signed input rejected: %v", err)
			}
			if n.ID != "" || n.Contract != nil || n.Transaction != nil || n.Refund != nil || n.Resource != nil {
				t.Fatalf("error %v with a non-zero notification", err)
			}
			return
		}
		isContract := n.EventType == service.EventContractSigned || n.EventType == service.EventContractTerminated
		isTransaction := n.EventType == service.EventTransactionSuccess
		_, isRefund := refundEventStatus[n.EventType]
		switch {
		case n.ID == "":
			t.Fatal("notification without an id")
		case isContract && (n.Contract == nil || (n.Contract.ContractID == "" && n.Contract.OutContractCode == "")):
			t.Fatalf("%s without a contract: %+v", n.EventType, n.Contract)
		case !isContract && n.Contract != nil:
			t.Fatalf("%s with a contract", n.EventType)
		case isTransaction && (n.Transaction == nil || n.Transaction.OutTradeNo == ""):
			t.Fatalf("%s without a transaction: %+v", n.EventType, n.Transaction)
		case !isTransaction && n.Transaction != nil:
			t.Fatalf("%s with a transaction", n.EventType)
		case isRefund && (n.Refund == nil || n.Refund.OutRefundNo == ""):
			t.Fatalf("%s without a refund: %+v", n.EventType, n.Refund)
		case !isRefund && n.Refund != nil:
			t.Fatalf("%s with a refund", n.EventType)
		}
	})
}

// fuzzSeed is one committed corpus file and the outcome it must have.
type fuzzSeed struct {
	name string
	in   fuzzInput
	want error // nil, ErrNotificationUnauthentic or ErrNotificationMalformed
}

func fuzzSeeds() []fuzzSeed {
	// asGiven turns a built notification into a mode-0 input.
	asGiven := func(h http.Header, body []byte) fuzzInput {
		return fuzzInput{body: body, ts: h.Get("Wechatpay-Timestamp"), nonce: h.Get("Wechatpay-Nonce"),
			serial: h.Get("Wechatpay-Serial"), signature: h.Get("Wechatpay-Signature"), sigType: h.Get("Wechatpay-Signature-Type")}
	}
	signH, signB := notif{id: "EV-SIGN", eventType: "PAPAY.SIGN", createTime: "2015-05-20T13:29:35+08:00", plaintext: signPlaintext}.build()
	termH, termB := notif{id: "EV-TERM", eventType: "PAPAY.TERMINATE", plaintext: `{"contract_id":"C9","plan_id":"66","contract_termination_mode":"USER"}`}.build()
	txH, txB := notif{id: "EV-TX", eventType: "TRANSACTION.SUCCESS", createTime: "2021-12-09T10:56:28+08:00", plaintext: txPlaintext}.build()
	txIDH, txIDB := notif{id: "EV-TX-ID", eventType: "TRANSACTION.SUCCESS",
		plaintext: `{"sub_mchid":"10000097","out_trade_no":"T1","id":"42","trade_state":"SUCCESS","amount":{"total":"100","currency":"HKD"}}`}.build()
	txNoKeyH, txNoKeyB := notif{id: "EV-TX-NOKEY", eventType: "TRANSACTION.SUCCESS", plaintext: `{"transaction_id":"42"}`}.build()
	staleH, staleB := notif{id: "EV-STALE", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: signStale}.build()
	tampered := asGiven(signH, signB)
	tampered.body = []byte(strings.Replace(string(signB), "EV-SIGN", "EV-SIGM", 1))
	unknown := asGiven(signH, signB)
	unknown.serial = rotatedSerial
	unauth, malformed := service.ErrNotificationUnauthentic, service.ErrNotificationMalformed
	return []fuzzSeed{
		{"valid-sign", asGiven(signH, signB), nil},
		{"valid-terminate", asGiven(termH, termB), nil},
		{"valid-transaction", asGiven(txH, txB), nil},
		{"valid-transaction-id", asGiven(txIDH, txIDB), nil},
		{"transaction-no-out-trade-no", asGiven(txNoKeyH, txNoKeyB), malformed},
		{"tampered-body", tampered, unauth},
		{"stale", asGiven(staleH, staleB), unauth},
		{"unknown-serial", unknown, unauth},
		{"empty", fuzzInput{}, unauth},
		{"signed-no-resource", fuzzInput{mode: 1, body: []byte(`{"id":"E","event_type":"PAPAY.SIGN"}`), nonce: "n1"}, malformed},
		{"signed-nonce-13", fuzzInput{mode: 1, body: []byte(`{"id":"E","resource":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789abc","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}}`)}, malformed},
		{"signed-not-json", fuzzInput{mode: 1, body: []byte(`<xml>`), nonce: "n2"}, malformed},
		{"signed-other-algorithm", fuzzInput{mode: 1, body: []byte(`{"id":"E","resource":{"algorithm":"AEAD_SM4_GCM","nonce":"0123456789ab","ciphertext":""}}`)}, malformed},
		{"encrypted-sign", fuzzInput{mode: 2, ts: "20180225112233", nonce: "n3", eventType: "PAPAY.SIGN", plaintext: []byte(signPlaintext)}, nil},
		{"encrypted-terminate", fuzzInput{mode: 2, ts: "2015-09-01T10:00:00+08:00", nonce: "n4", eventType: "PAPAY.TERMINATE",
			plaintext: []byte(`{"out_contract_code":"X","plan_id":7,"sub_openid":"o","contract_termination_mode":"MERCHANT"}`)}, nil},
		{"encrypted-not-json", fuzzInput{mode: 2, nonce: "n5", eventType: "PAPAY.SIGN", plaintext: []byte(`plain text`)}, malformed},
		{"encrypted-wrong-types", fuzzInput{mode: 2, nonce: "n6", eventType: "PAPAY.TERMINATE", plaintext: []byte(`{"contract_id":1}`)}, malformed},
		{"encrypted-transaction", fuzzInput{mode: 2, ts: "2021-12-09T10:56:28+08:00", nonce: "n7", eventType: "TRANSACTION.SUCCESS",
			plaintext: []byte(`{"out_trade_no":"T2","transaction_id":"43","trade_state":"SUCCESS","amount":{"total":1,"currency":"JPY"},` +
				`"promotion_detail":[{"amount":1,"goods_detail":[{"quantity":1}]}]}`)}, nil},
		{"encrypted-transaction-float-amount", fuzzInput{mode: 2, nonce: "n8", eventType: "TRANSACTION.SUCCESS",
			plaintext: []byte(`{"out_trade_no":"T3","amount":{"total":1.5}}`)}, malformed},
		{"encrypted-refund", fuzzInput{mode: 2, ts: "2018-06-08T10:34:57+08:00", nonce: "n9", eventType: "REFUND.SUCCESS",
			plaintext: []byte(refundPlaintext)}, nil},
		{"encrypted-refund-no-out-refund-no", fuzzInput{mode: 2, nonce: "n10", eventType: "REFUND.CLOSED",
			plaintext: []byte(`{"refund_id":"5","refund_status":"CLOSED"}`)}, malformed},
	}
}

// encode writes in in the "go test fuzz v1" format, in FuzzParse's
// argument order.
func (in fuzzInput) encode() string {
	return fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\nstring(%q)\nstring(%q)\nstring(%q)\nstring(%q)\nstring(%q)\nstring(%q)\n[]byte(%q)\n",
		in.mode, in.body, in.ts, in.nonce, in.serial, in.signature, in.sigType, in.eventType, in.plaintext)
}

// TestFuzzParseCorpus checks the committed seed corpus: each file is what
// fuzzSeeds encodes (rewrite with -update-fuzz-corpus) and parses to its
// intended outcome.
func TestFuzzParseCorpus(t *testing.T) {
	t.Parallel()
	p := newTestParser(t, nil)
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	for _, s := range fuzzSeeds() {
		path := filepath.Join(dir, s.name)
		if *updateFuzzCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(s.in.encode()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != s.in.encode() {
			t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzParseCorpus -update-fuzz-corpus", path, err)
		}
		_, err := p.Parse(s.in.request(platformKey, platformSerial))
		if (s.want == nil && err != nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Errorf("seed %s: err %v, want %v", s.name, err, s.want)
		}
	}
}
