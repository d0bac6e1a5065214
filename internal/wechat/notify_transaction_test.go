package wechat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// txPlaintext is a TRANSACTION.SUCCESS resource in the papay naming.
const txPlaintext = `{"sp_mchid":"10000091","sub_mchid":"10000097","sp_appid":"wxcbda96de0b165486",
"out_trade_no":"1217752501201407033233368018","transaction_id":"4200001136202112092809736426",
"contract_id":"Wx15463511252015071056489715","trade_type":"AUTH","trade_state":"SUCCESS","trade_state_desc":"支付成功",
"bank_type":"CFT","attach":"test","success_time":"2021-12-09T10:56:27+08:00",
"payer":{"sp_openid":"of8YZ6A_ySrPYzjX7joXo_h2CI44"},
"amount":{"total":10000,"currency":"HKD","payer_total":8765,"payer_currency":"CNY","exchange_rate":{"type":"SETTLEMENT_RATE","rate":87650000}},
"promotion_detail":[{"promotion_id":"P1","amount":5,"currency":"HKD","wxpay_contribute_amount":5,
  "goods_detail":[{"goods_id":"G1","discount_amount":5,"quantity":1,"price":10000}]}]}`

func TestParseTransactionSuccess(t *testing.T) {
	t.Parallel()
	want := &service.RemoteTransaction{
		SubMchID: "10000097", OutTradeNo: "1217752501201407033233368018", TransactionID: "4200001136202112092809736426",
		ContractID: "Wx15463511252015071056489715", TradeType: "AUTH", TradeState: "SUCCESS", TradeStateDesc: "支付成功",
		BankType: "CFT", Attach: "test", SuccessTime: time.Date(2021, 12, 9, 2, 56, 27, 0, time.UTC),
		Amount: service.Money{Total: 10000, Currency: "HKD"}, PayerTotal: 8765, PayerCurrency: "CNY",
		ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 87650000}, SPOpenID: "of8YZ6A_ySrPYzjX7joXo_h2CI44",
		PromotionDetail: []service.PromotionDetail{{PromotionID: "P1", Amount: 5, Currency: "HKD", WxpayContributeAmount: 5,
			GoodsDetail: []service.GoodsDetail{{GoodsID: "G1", DiscountAmount: 5, Quantity: 1, Price: 10000}}}},
	}
	generic := strings.Replace(txPlaintext, `"transaction_id"`, `"id"`, 1)
	generic = strings.Replace(generic, `"wxpay_contribute_amount"`, `"wechatpay_contribute_amount"`, 1)
	for name, plain := range map[string]string{"transaction_id": txPlaintext, "id": generic} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, body := notif{id: "EV-TX", eventType: "TRANSACTION.SUCCESS", createTime: "2021-12-09T10:56:28+08:00", plaintext: plain}.build()
			got, err := newTestParser(t, nil).Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.ID != "EV-TX" || got.EventType != service.EventTransactionSuccess || got.Contract != nil || string(got.Resource) != plain {
				t.Errorf("notification %+v", got)
			}
			if diff := cmp.Diff(want, got.Transaction, timeEqual); diff != "" {
				t.Errorf("transaction (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTransactionSuccessMinimal(t *testing.T) {
	t.Parallel()
	// Only out_trade_no is required; trade_state is kept as given (absent).
	h, body := notif{id: "EV", eventType: "TRANSACTION.SUCCESS", plaintext: `{"out_trade_no":"T1","new_field":[1.5]}`}.build()
	got, err := newTestParser(t, nil).Parse(h, body)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(&service.RemoteTransaction{OutTradeNo: "T1"}, got.Transaction); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}
}

func TestParseTransactionSuccessMalformed(t *testing.T) {
	t.Parallel()
	for name, plain := range map[string]string{
		"not JSON":             `out_trade_no=o-secret-plaintext`,
		"null":                 `null`,
		"array":                `["o-secret-plaintext"]`,
		"empty object":         `{}`,
		"no out_trade_no":      `{"transaction_id":"o-secret-plaintext","trade_state":"SUCCESS"}`,
		"empty out_trade_no":   `{"out_trade_no":"","id":"o-secret-plaintext"}`,
		"out_trade_no number":  `{"out_trade_no":12345}`,
		"float amount":         `{"out_trade_no":"o-secret-plaintext","amount":{"total":100.5}}`,
		"amount not a number":  `{"out_trade_no":"T","amount":{"total":"o-secret-plaintext"}}`,
		"promotion not a list": `{"out_trade_no":"T","promotion_detail":{"amount":1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, body := notif{id: "EV", eventType: "TRANSACTION.SUCCESS", plaintext: plain}.build()
			n, err := newTestParser(t, nil).Parse(h, body)
			if !errors.Is(err, service.ErrNotificationMalformed) {
				t.Fatalf("err %v, want ErrNotificationMalformed", err)
			}
			if strings.Contains(err.Error(), "o-secret") {
				t.Errorf("error text quotes the plaintext: %v", err)
			}
			if n.Transaction != nil || n.ID != "" {
				t.Errorf("a notification with the error: %+v", n)
			}
		})
	}
}

func TestParseOtherEventsCarryNoTransaction(t *testing.T) {
	t.Parallel()
	for _, ev := range []string{"PAPAY.SIGN", "COUPON.USE"} {
		plain := signPlaintext
		if ev != "PAPAY.SIGN" {
			plain = txPlaintext
		}
		h, body := notif{id: "EV", eventType: ev, plaintext: plain}.build()
		n, err := newTestParser(t, nil).Parse(h, body)
		if err != nil || n.Transaction != nil {
			t.Errorf("%s: err %v, transaction %+v", ev, err, n.Transaction)
		}
	}
}

// BenchmarkDecodeTransactionSuccess measures what the parser does to a
// TRANSACTION.SUCCESS body after its signature verified: decrypting and
// decoding, the part of a callback's CPU that is not RSA.
func BenchmarkDecodeTransactionSuccess(b *testing.B) {
	_, body := notif{id: "EV-TX", eventType: "TRANSACTION.SUCCESS", createTime: "2021-12-09T10:56:28+08:00", plaintext: txPlaintext}.build()
	p := newTestParser(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
