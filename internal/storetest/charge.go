package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// fullCharge is a charge with every field set, promotion and goods detail
// included; its times carry nanoseconds, some in a zone other than UTC,
// and its amounts need more than a float64's 53 bits.
func fullCharge(outTradeNo, transactionID string, created time.Time) service.Charge {
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

// createCharges inserts cs in one transaction and fails the test on error.
func createCharges(t *testing.T, s service.Store, cs ...service.Charge) {
	t.Helper()
	inTx(t, s, func(tx service.Tx) error {
		for _, c := range cs {
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkCharge fails the test unless s reads want, by each of its keys,
// outside and inside a transaction, with its times in UTC.
func checkCharge(t *testing.T, s service.Store, step string, want service.Charge) {
	t.Helper()
	ctx := t.Context()
	check := func(where string, r service.ChargeReader) {
		t.Helper()
		got, err := r.ChargeByOutTradeNo(ctx, want.OutTradeNo)
		if err != nil {
			t.Fatalf("%s: ChargeByOutTradeNo on %s: %v", step, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: by out_trade_no on %s (-want +got):\n%s", step, where, diff)
		}
		checkUTC(t, step, map[string]time.Time{"CreateTime": got.CreateTime, "UpdateTime": got.UpdateTime,
			"SuccessTime": got.SuccessTime, "LastSendTime": got.LastSendTime, "NextCheckTime": got.NextCheckTime})
		if want.TransactionID == "" {
			return
		}
		got, err = r.ChargeByTransactionID(ctx, want.TransactionID)
		if err != nil {
			t.Fatalf("%s: ChargeByTransactionID on %s: %v", step, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: by transaction id on %s (-want +got):\n%s", step, where, diff)
		}
	}
	check("store", s)
	inTx(t, s, func(tx service.Tx) error {
		check("tx", tx)
		return nil
	})
}

func testChargeRoundTrip(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	created := base.In(shanghai)
	c := fullCharge("T1", "X1", created)
	createCharges(t, s, c)
	checkCharge(t, s, "create", c)

	// Change every field and clear the times that may be zero; the fields
	// fixed at creation keep their recorded values, RefundedTotal is
	// written.
	u := fullCharge("T1", "X2", created.Add(time.Second))
	u.ContractID, u.OutContractCode, u.OpenID = "C2", "OCC2", "o2"
	u.Merchant = service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	u.Amount, u.PayerTotal, u.PayerCurrency = service.Money{Total: 100, Currency: "USD"}, -1, "USD"
	u.ExchangeRate = service.ExchangeRate{}
	u.Description, u.Attach, u.GoodsTag, u.MerchantCategoryCode = "d2", "", "", "0000"
	u.SceneInfo, u.BankType = service.SceneInfo{}, "OTHERS"
	u.TradeState, u.TradeStateDesc, u.State = service.TradeSuccess, "paid", service.ChargeSucceeded
	u.FailureCode, u.FailureMessage = "", ""
	u.SuccessTime, u.UpdateTime, u.LastSendTime, u.NextCheckTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	u.CheckAttempts, u.RefundedTotal, u.PromotionDetail = 4, 7, nil
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateCharge(ctx, u) })
	u.ContractID, u.OutContractCode, u.OpenID, u.Merchant = c.ContractID, c.OutContractCode, c.OpenID, c.Merchant
	u.Amount, u.Description, u.Attach, u.GoodsTag = c.Amount, c.Description, c.Attach, c.GoodsTag
	u.MerchantCategoryCode, u.SceneInfo, u.CreateTime = c.MerchantCategoryCode, c.SceneInfo, c.CreateTime
	checkCharge(t, s, "update", u)
	_, err := s.ChargeByTransactionID(ctx, "X1")
	checkErr(t, "old transaction id after update", err, service.ErrNotFound)

	// A promotion without goods detail, and every field set again.
	v := fullCharge("T1", "X2", created)
	v.PromotionDetail = v.PromotionDetail[1:]
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateCharge(ctx, v) })
	checkCharge(t, s, "update again", v)
}

func testChargeZeroValues(t *testing.T, open Opener) {
	s := open(t)
	c := service.Charge{OutTradeNo: "T0", CreateTime: time.Unix(0, 1).UTC()}
	createCharges(t, s, c)
	checkCharge(t, s, "zero values", c)
}

func testChargeConflicts(t *testing.T, open Opener) {
	created := base
	tests := []struct {
		name     string
		existing []service.Charge
		op       func(t *testing.T, tx service.Tx) error
		want     error
	}{{
		name:     "duplicate out_trade_no",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T1", "X2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate out_trade_no, both without transaction id",
		existing: []service.Charge{fullCharge("T1", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T1", "", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T2", "X1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty transaction ids",
		existing: []service.Charge{fullCharge("T1", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.CreateCharge(t.Context(), fullCharge("T2", "", created))
		},
	}, {
		name:     "update to another charge's transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created), fullCharge("T2", "", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T2", "X1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "update keeping its own transaction id",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T1", "X1", created.Add(time.Hour)))
		},
	}, {
		name:     "update missing",
		existing: []service.Charge{fullCharge("T1", "X1", created)},
		op: func(t *testing.T, tx service.Tx) error {
			return tx.UpdateCharge(t.Context(), fullCharge("T2", "X2", created))
		},
		want: service.ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			createCharges(t, s, tt.existing...)
			err := s.InTx(t.Context(), func(tx service.Tx) error { return tt.op(t, tx) })
			checkErr(t, "InTx", err, tt.want)
			if tt.want == nil {
				return
			}
			for _, want := range tt.existing {
				checkCharge(t, s, "after a refused write", want)
			}
		})
	}
}

func testChargeNotFound(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	// A charge without a transaction id: the empty id must not find it.
	createCharges(t, s, fullCharge("T1", "", base))
	tests := []struct {
		name string
		get  func(service.ChargeReader) error
	}{
		{"unknown out_trade_no", func(r service.ChargeReader) error {
			_, err := r.ChargeByOutTradeNo(ctx, "nope")
			return err
		}},
		{"empty out_trade_no", func(r service.ChargeReader) error {
			_, err := r.ChargeByOutTradeNo(ctx, "")
			return err
		}},
		{"unknown transaction id", func(r service.ChargeReader) error {
			_, err := r.ChargeByTransactionID(ctx, "nope")
			return err
		}},
		{"empty transaction id", func(r service.ChargeReader) error {
			_, err := r.ChargeByTransactionID(ctx, "")
			return err
		}},
	}
	for _, tt := range tests {
		checkErr(t, tt.name+" on the store", tt.get(s), service.ErrNotFound)
		inTx(t, s, func(tx service.Tx) error {
			checkErr(t, tt.name+" in a tx", tt.get(tx), service.ErrNotFound)
			return nil
		})
	}
}
