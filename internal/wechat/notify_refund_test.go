package wechat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// refundPlaintext is a REFUND.SUCCESS resource as documented.
const refundPlaintext = `{"sp_mchid":"1900000100","sub_mchid":"1900000109","transaction_id":"1008450740201411110005820873",
"out_trade_no":"20150806125346","refund_id":"50200207182018070300011301001","out_refund_no":"7752501201407033233368018",
"refund_status":"SUCCESS","success_time":"2018-06-08T10:34:56+08:00","user_received_account":"招商银行信用卡0403",
"amount":{"total":999,"currency":"HKD","refund":999,"payer_total":876,"payer_currency":"CNY","payer_refund":876,
"exchange_rate":{"type":"SETTLEMENT_RATE","rate":87650000}}}`

var refundNotified = service.RemoteRefund{
	SpMchID: "1900000100", SubMchID: "1900000109", RefundID: "50200207182018070300011301001",
	OutRefundNo: "7752501201407033233368018", TransactionID: "1008450740201411110005820873", OutTradeNo: "20150806125346",
	Status: "SUCCESS", RecvAccount: "招商银行信用卡0403", SuccessTime: time.Date(2018, 6, 8, 2, 34, 56, 0, time.UTC),
	Refund: 999, Total: 999, Currency: "HKD", PayerRefund: 876, PayerTotal: 876, PayerCurrency: "CNY",
	ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 87650000},
}

func TestParseRefundNotifications(t *testing.T) {
	t.Parallel()
	closed := strings.Replace(refundPlaintext, `"refund_status":"SUCCESS"`, `"refund_status":"CLOSED"`, 1)
	abnormal := strings.Replace(refundPlaintext, `"refund_status":"SUCCESS"`, `"refund_status":"ABNORMAL"`, 1)
	noStatus := strings.Replace(refundPlaintext, `"refund_status":"SUCCESS",`, ``, 1)
	// The query naming (id, status, recv_account), amounts as strings, the
	// bare rate, mchid for sp_mchid.
	queryNaming := `{"mchid":"1900000100","sub_mchid":"1900000109","transaction_id":"1008450740201411110005820873",
"out_trade_no":"20150806125346","id":"50200207182018070300011301001","out_refund_no":"7752501201407033233368018",
"status":"SUCCESS","success_time":"20180608103456","recv_account":"招商银行信用卡0403",
"amount":{"total":"999","currency":"HKD","refund":"999","payer_total":876,"payer_currency":"CNY","payer_refund":876,
"exchange_rate":87650000},"channel":1,"unknown":{"a":[1.5]}}`
	with := func(status string, rate service.ExchangeRate) service.RemoteRefund {
		r := refundNotified
		r.Status, r.ExchangeRate = status, rate
		return r
	}
	// A descriptive text of another JSON type is read loosely.
	loose := with("SUCCESS", service.ExchangeRate{Rate: 87650000})
	loose.Channel = "1"
	tests := []struct {
		name, eventType, plaintext string
		want                       service.RemoteRefund
	}{
		{"success", "REFUND.SUCCESS", refundPlaintext, refundNotified},
		{"closed", "REFUND.CLOSED", closed, with("CLOSED", refundNotified.ExchangeRate)},
		{"abnormal", "REFUND.ABNORMAL", abnormal, with("ABNORMAL", refundNotified.ExchangeRate)},
		{"status from the event type", "REFUND.ABNORMAL", noStatus, with("ABNORMAL", refundNotified.ExchangeRate)},
		{"query naming", "REFUND.SUCCESS", queryNaming, loose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, body := notif{id: "EV-R", eventType: tt.eventType, createTime: "2018-06-08T10:34:57+08:00", plaintext: tt.plaintext}.build()
			got, err := newTestParser(t, nil).Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.ID != "EV-R" || got.EventType != tt.eventType || got.SpMchID != "1900000100" || got.SubMchID != "1900000109" ||
				got.Contract != nil || got.Transaction != nil || string(got.Resource) != tt.plaintext {
				t.Errorf("notification %+v", got)
			}
			if diff := cmp.Diff(&tt.want, got.Refund, timeEqual); diff != "" {
				t.Errorf("refund (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRefundNotificationMalformed(t *testing.T) {
	t.Parallel()
	for name, plain := range map[string]string{
		"not JSON":          `refund`,
		"not an object":     `["x"]`,
		"null":              `null`,
		"no out_refund_no":  `{"refund_id":"5","refund_status":"SUCCESS"}`,
		"numeric key":       `{"out_refund_no":7752501201407033233368018}`,
		"float amount":      `{"out_refund_no":"R","amount":{"refund":9.99}}`,
		"status an object":  `{"out_refund_no":"R","refund_status":{"v":"SUCCESS"}}`,
		"rate not a number": `{"out_refund_no":"R","amount":{"exchange_rate":"high"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, body := notif{id: "EV-R", eventType: "REFUND.SUCCESS", plaintext: plain}.build()
			got, err := newTestParser(t, nil).Parse(h, body)
			if !errors.Is(err, service.ErrNotificationMalformed) {
				t.Fatalf("err %v, want ErrNotificationMalformed", err)
			}
			if got.ID != "" || got.Refund != nil || got.Resource != nil {
				t.Errorf("a notification with the error: %+v", got)
			}
			if strings.Contains(err.Error(), "7752501201407033233368018") || strings.Contains(err.Error(), "9.99") {
				t.Errorf("the error quotes the plaintext: %v", err)
			}
		})
	}
	// Another event type does not decode a refund, even from a refund resource.
	h, body := notif{id: "EV-X", eventType: "REFUND.SOMETHING", plaintext: `{"out_refund_no":7}`}.build()
	got, err := newTestParser(t, nil).Parse(h, body)
	if err != nil || got.Refund != nil {
		t.Errorf("REFUND.SOMETHING: %+v, %v", got, err)
	}
}
