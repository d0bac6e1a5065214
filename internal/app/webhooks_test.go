package app

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// refundJSON is the part of a refund's JSON TestEncodeEventRefund reads.
type refundJSON struct {
	OutRefundNo string     `json:"out_refund_no"`
	RefundID    string     `json:"refund_id"`
	OutTradeNo  string     `json:"out_trade_no"`
	SubMchid    string     `json:"sub_mchid"`
	SpAppid     string     `json:"sp_appid"`
	Amount      amountJSON `json:"amount"`
	ChargeTotal string     `json:"charge_total"`
	State       string     `json:"state"`
	SuccessTime string     `json:"success_time"`
}

type amountJSON struct {
	Refund   string `json:"refund"`
	Currency string `json:"currency"`
}

// TestEncodeEventRefund: a webhook delivery of a refund event carries the
// refund, in the JSON of GET /v1/events/{id} (proto names, int64 as
// strings, the state's enum name).
func TestEncodeEventRefund(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	r := service.Refund{OutRefundNo: "R1", RefundID: "W1", OutTradeNo: "T1", TransactionID: "X1",
		Merchant: service.Merchant{SubMchID: "m1", SPAppID: "sp1"}, Reason: "returned",
		Amount: service.Money{Total: 500, Currency: "HKD"}, ChargeTotal: 1000, State: service.RefundSucceeded,
		Status: service.RefundStatusSuccess, SuccessTime: at, CreateTime: at, UpdateTime: at}
	b, err := encodeEvent(service.Event{ID: "evt_1", Sequence: 3, Type: service.EventRefundSucceeded, CreateTime: at, SubMchID: "m1", Refund: &r})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Event struct {
			ID     string          `json:"id"`
			Type   string          `json:"type"`
			Refund *refundJSON     `json:"refund"`
			Charge json.RawMessage `json:"charge"`
		} `json:"event"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Event.ID != "evt_1" || got.Event.Type != "refund.succeeded" || got.Event.Refund == nil || got.Event.Charge != nil {
		t.Fatalf("event %s: want refund.succeeded with a refund and no charge", b)
	}
	want := refundJSON{OutRefundNo: "R1", RefundID: "W1", OutTradeNo: "T1", SubMchid: "m1", SpAppid: "sp1",
		Amount: amountJSON{Refund: "500", Currency: "HKD"}, ChargeTotal: "1000",
		State: "REFUND_STATE_SUCCEEDED", SuccessTime: "2026-03-01T10:00:00Z"}
	if diff := cmp.Diff(want, *got.Event.Refund); diff != "" {
		t.Errorf("refund in %s (-want +got):\n%s", b, diff)
	}
}
