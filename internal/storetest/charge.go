package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// FullCharge is a charge with every field set, promotion and goods detail
// included; its times carry nanoseconds, some in a zone other than UTC,
// and its amounts need more than a float64's 53 bits.
func FullCharge(outTradeNo, transactionID string, created time.Time) service.Charge {
	return service.Charge{
		OutTradeNo:           outTradeNo,
		TransactionID:        transactionID,
		ContractID:           "C1",
		OutContractCode:      "OCC1",
		OpenID:               "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
		Merchant:             service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		Amount:               service.Money{Total: 1<<53 + 1, Currency: "HKD"},
		PayerTotal:           1<<62 + 3,
		PayerCurrency:        "CNY",
		ExchangeRate:         service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 91234567},
		Description:          "monthly plan",
		Attach:               `{"order":"42"}`,
		GoodsTag:             "WXG",
		MerchantCategoryCode: "5812",
		SceneInfo:            service.SceneInfo{DeviceID: "POS-7", DeviceIP: "2001:db8::1"},
		NotifyURL:            "https://papayd.example/wechatpay/notify",
		BankType:             "CMB_CREDIT",
		TradeState:           service.TradePayError,
		TradeStateDesc:       "insufficient balance",
		State:                service.ChargeFailed,
		FailureCode:          "NOTENOUGH",
		FailureMessage:       "balance too low",
		SuccessTime:          created.Add(time.Minute + 7).In(shanghai),
		PromotionDetail: []service.PromotionDetail{{
			PromotionID: "109519", Name: "spring", Scope: "SINGLE", Type: "DISCOUNT",
			Amount: 5, Currency: "HKD", ActivityID: "931386",
			WxpayContributeAmount: 1, MerchantContributeAmount: 3, OtherContributeAmount: 1,
			GoodsDetail: []service.GoodsDetail{
				{GoodsID: "g1", GoodsRemark: "first", DiscountAmount: 2, Quantity: 1, Price: 100},
				{GoodsID: "g2", GoodsRemark: "second", DiscountAmount: 3, Quantity: 4, Price: 1<<53 + 1},
			},
		}, {
			PromotionID: "2", Name: "no goods", Scope: "GLOBAL", Type: "COUPON",
			Amount: 1, Currency: "HKD", ActivityID: "3", WxpayContributeAmount: 1,
		}},
		RefundedTotal: 1<<53 - 1,
		CreateTime:    created,
		UpdateTime:    created.Add(2*time.Hour + 1).In(shanghai),
		LastSendTime:  created.Add(time.Minute + 3).In(shanghai),
		NextCheckTime: created.Add(5*time.Minute + 13).In(shanghai),
		CheckAttempts: 3,
	}
}

// charges is the record test description of charges.
var charges = record[service.Charge]{
	kind: "charge", keyName: "out_trade_no", idName: "transaction id", keyPre: "T", idPre: "X",
	full: FullCharge,
	zero: func(key string, created time.Time) service.Charge {
		return service.Charge{OutTradeNo: key, CreateTime: created}
	},
	withNextCheck: func(c service.Charge, next time.Time) service.Charge { c.NextCheckTime = next; return c },
	keys:          func(c service.Charge) (string, string) { return c.OutTradeNo, c.TransactionID },
	times: func(c service.Charge) map[string]time.Time {
		return map[string]time.Time{"CreateTime": c.CreateTime, "UpdateTime": c.UpdateTime,
			"SuccessTime": c.SuccessTime, "LastSendTime": c.LastSendTime, "NextCheckTime": c.NextCheckTime}
	},
	create: func(t *testing.T, tx service.Tx, c service.Charge) error { return tx.CreateCharge(t.Context(), c) },
	update: func(t *testing.T, tx service.Tx, c service.Charge) error { return tx.UpdateCharge(t.Context(), c) },
	byKey: func(t *testing.T, r reader, no string) (service.Charge, error) {
		return r.ChargeByOutTradeNo(t.Context(), no)
	},
	byID: func(t *testing.T, r reader, id string) (service.Charge, error) {
		return r.ChargeByTransactionID(t.Context(), id)
	},
}

// createCharges inserts cs in one transaction and fails the test on error.
func createCharges(t *testing.T, s service.Store, cs ...service.Charge) {
	t.Helper()
	charges.createAll(t, s, cs...)
}

// checkCharge fails the test unless s reads want, by each of its keys,
// outside and inside a transaction, with its times in UTC.
func checkCharge(t *testing.T, s service.Store, step string, want service.Charge) {
	t.Helper()
	charges.check(t, s, step, want)
}

func testChargeRoundTrip(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	created := base.In(shanghai)
	c := FullCharge("T1", "X1", created)
	createCharges(t, s, c)
	checkCharge(t, s, "create", c)

	// Change every field, clear the times that may be zero and empty the
	// promotion detail (an empty list reads back as nil); the fields fixed
	// at creation keep their recorded values, RefundedTotal is written.
	u := FullCharge("T1", "X2", created.Add(time.Second))
	u.ContractID, u.OutContractCode, u.OpenID = "C2", "OCC2", "o2"
	u.Merchant = service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	u.Amount, u.PayerTotal, u.PayerCurrency = service.Money{Total: 100, Currency: "USD"}, -1, "USD"
	u.ExchangeRate = service.ExchangeRate{}
	u.Description, u.Attach, u.GoodsTag, u.MerchantCategoryCode = "d2", "", "", "0000"
	u.SceneInfo, u.BankType = service.SceneInfo{}, "OTHERS"
	u.TradeState, u.TradeStateDesc, u.State = service.TradeSuccess, "paid", service.ChargeSucceeded
	u.FailureCode, u.FailureMessage = "", ""
	u.SuccessTime, u.UpdateTime, u.LastSendTime, u.NextCheckTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	u.CheckAttempts, u.RefundedTotal, u.PromotionDetail = 4, 7, []service.PromotionDetail{}
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateCharge(ctx, u) })
	u.PromotionDetail = nil
	u.ContractID, u.OutContractCode, u.OpenID, u.Merchant = c.ContractID, c.OutContractCode, c.OpenID, c.Merchant
	u.Amount, u.Description, u.Attach, u.GoodsTag = c.Amount, c.Description, c.Attach, c.GoodsTag
	u.MerchantCategoryCode, u.SceneInfo, u.CreateTime = c.MerchantCategoryCode, c.SceneInfo, c.CreateTime
	checkCharge(t, s, "update", u)
	_, err := s.ChargeByTransactionID(ctx, "X1")
	checkErr(t, "old transaction id after update", err, service.ErrNotFound)

	// A promotion without goods detail, and every field set again.
	v := FullCharge("T1", "X2", created)
	v.PromotionDetail = v.PromotionDetail[1:]
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateCharge(ctx, v) })
	checkCharge(t, s, "update again", v)
}

// testRefundedTotal: UpdateCharge writes the refunded total, and only to
// the charge it names.
func testRefundedTotal(t *testing.T, open Opener) {
	s := open(t)
	c1, c2 := FullCharge("T1", "X1", base), FullCharge("T2", "X2", base)
	c1.RefundedTotal, c2.RefundedTotal = 0, 0
	createCharges(t, s, c1, c2)
	for _, total := range []int64{300, 1<<53 + 1, 0} {
		c1.RefundedTotal = total
		inTx(t, s, func(tx service.Tx) error { return tx.UpdateCharge(t.Context(), c1) })
		checkCharge(t, s, fmt.Sprintf("after writing %d to T1", total), c1)
		checkCharge(t, s, fmt.Sprintf("T2 after writing %d to T1", total), c2)
	}
}
