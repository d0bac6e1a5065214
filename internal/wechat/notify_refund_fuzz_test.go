package wechat

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// refundEnvelope is a notification body whose resource is plaintext,
// encrypted under the test APIv3 key: what the parser sees once the
// signature has been verified.
func refundEnvelope(eventType string, plaintext []byte) []byte {
	body, err := marshal(map[string]any{"id": "EV-REFUND-FUZZ", "create_time": "2018-06-08T10:34:57+08:00",
		"event_type": eventType, "resource_type": "encrypt-resource", "summary": "退款成功",
		"resource": map[string]any{"original_type": "refund", "algorithm": aeadAlgorithm, "nonce": "0123456789ab",
			"associated_data": "refund", "ciphertext": seal(testAPIv3Key, "0123456789ab", "refund", plaintext)}})
	if err != nil {
		panic(err)
	}
	return body
}

// refundResourceJSON encodes r as the canonical REFUND.* resource.
func refundResourceJSON(r service.RemoteRefund) []byte {
	rfc := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339Nano)
	}
	b, err := marshal(map[string]any{"sp_mchid": r.SpMchID, "sub_mchid": r.SubMchID, "refund_id": r.RefundID,
		"out_refund_no": r.OutRefundNo, "transaction_id": r.TransactionID, "out_trade_no": r.OutTradeNo,
		"refund_status": r.Status, "channel": r.Channel, "user_received_account": r.RecvAccount, "fund_source": r.FundSource,
		"success_time": rfc(r.SuccessTime), "create_time": rfc(r.CreateTime),
		"amount": map[string]any{"refund": r.Refund, "total": r.Total, "currency": r.Currency, "payer_refund": r.PayerRefund,
			"payer_total": r.PayerTotal, "payer_currency": r.PayerCurrency,
			"exchange_rate": map[string]any{"type": r.ExchangeRate.Type, "rate": r.ExchangeRate.Rate}}})
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzDecodeRefund decodes REFUND.* resources (and others under refund
// event types) past the signature: it never panics; an error is
// ErrNotificationMalformed with a zero notification; a refund event
// decodes to a refund with an out_refund_no and a status, scoped by its
// merchants; the decoded refund survives re-encoding unchanged.
func FuzzDecodeRefund(f *testing.F) {
	for _, s := range refundFuzzSeeds() {
		f.Add(s.eventType, []byte(s.plaintext))
	}
	p := newTestParser(f, nil)
	f.Fuzz(func(t *testing.T, eventType string, plaintext []byte) {
		n, err := p.decode(refundEnvelope(eventType, plaintext))
		if err != nil {
			if !errors.Is(err, service.ErrNotificationMalformed) {
				t.Fatalf("error %v is not ErrNotificationMalformed", err)
			}
			if n.ID != "" || n.Refund != nil || n.Resource != nil {
				t.Fatalf("error %v with a non-zero notification", err)
			}
			return
		}
		_, isRefund := refundEventStatus[eventType]
		switch {
		case n.ID != "EV-REFUND-FUZZ" || string(n.Resource) != string(plaintext):
			t.Fatalf("notification %q with resource %q", n.ID, n.Resource)
		case !isRefund && n.Refund != nil:
			t.Fatalf("%s with a refund", eventType)
		case !isRefund:
			return
		case n.Refund == nil:
			t.Fatalf("%s without a refund", eventType)
		case n.Refund.OutRefundNo == "" || n.Refund.Status == "":
			t.Fatalf("%s refund without out_refund_no or status: %+v", eventType, n.Refund)
		case n.SpMchID != n.Refund.SpMchID || n.SubMchID != n.Refund.SubMchID:
			t.Fatalf("notification scoped by %q/%q, refund names %q/%q", n.SpMchID, n.SubMchID, n.Refund.SpMchID, n.Refund.SubMchID)
		}
		var keys struct {
			OutRefundNo string `json:"out_refund_no"`
		}
		if json.Unmarshal(plaintext, &keys) == nil && keys.OutRefundNo != n.Refund.OutRefundNo {
			t.Fatalf("out_refund_no %q decoded as %q", keys.OutRefundNo, n.Refund.OutRefundNo)
		}
		again, err := decodeRefundEvent(eventType, refundResourceJSON(*n.Refund))
		if err != nil {
			t.Fatalf("the re-encoded refund does not decode: %v", err)
		}
		if diff := cmp.Diff(n.Refund, again, timeEqual); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
	})
}

// refundFuzzSeed is one committed FuzzDecodeRefund input and its outcome.
type refundFuzzSeed struct {
	name, eventType, plaintext string
	malformed                  bool
}

func refundFuzzSeeds() []refundFuzzSeed {
	return []refundFuzzSeed{
		{"success", "REFUND.SUCCESS", refundPlaintext, false},
		{"closed", "REFUND.CLOSED", strings.Replace(refundPlaintext, `"SUCCESS"`, `"CLOSED"`, 1), false},
		{"abnormal-no-status", "REFUND.ABNORMAL", `{"out_refund_no":"R1","sub_mchid":"1900000109"}`, false},
		{"query-naming", "REFUND.SUCCESS", `{"mchid":"1","id":"5","out_refund_no":"R2","status":"REFUNDCLOSE",` +
			`"success_time":"20180608103456","amount":{"refund":"10","exchange_rate":100000000}}`, false},
		{"not-a-refund-event", "TRANSACTION.SUCCESS.X", `{"out_refund_no":1}`, false},
		{"no-out-refund-no", "REFUND.SUCCESS", `{"refund_id":"5","refund_status":"SUCCESS"}`, true},
		{"numeric-key", "REFUND.CLOSED", `{"out_refund_no":12345}`, true},
		{"float-amount", "REFUND.SUCCESS", `{"out_refund_no":"R","amount":{"refund":1.5}}`, true},
		{"not-json", "REFUND.SUCCESS", `refund`, true},
		{"null", "REFUND.ABNORMAL", `null`, true},
	}
}

// TestFuzzDecodeRefundCorpus checks the committed seed corpus: each file is
// what refundFuzzSeeds encodes (rewrite with -update-fuzz-corpus) and
// decodes to its intended outcome.
func TestFuzzDecodeRefundCorpus(t *testing.T) {
	t.Parallel()
	p := newTestParser(t, nil)
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRefund")
	for _, s := range refundFuzzSeeds() {
		path := filepath.Join(dir, s.name)
		enc := fmt.Sprintf("go test fuzz v1\nstring(%q)\n[]byte(%q)\n", s.eventType, s.plaintext)
		if *updateFuzzCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(enc), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != enc {
			t.Errorf("%s is missing or stale (%v); run go test -run TestFuzzDecodeRefundCorpus -update-fuzz-corpus", path, err)
		}
		_, err := p.decode(refundEnvelope(s.eventType, []byte(s.plaintext)))
		if got := errors.Is(err, service.ErrNotificationMalformed); got != s.malformed || (err != nil && !got) {
			t.Errorf("seed %s: err %v, want malformed %v", s.name, err, s.malformed)
		}
	}
}
