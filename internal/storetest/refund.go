package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// FullRefund is a refund of charge T1 with every field set; its times
// carry nanoseconds, some in a zone other than UTC.
func FullRefund(outRefundNo, refundID string, created time.Time) service.Refund {
	return service.Refund{
		OutRefundNo:    outRefundNo,
		RefundID:       refundID,
		OutTradeNo:     "T1",
		TransactionID:  "X1",
		Merchant:       service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		Reason:         "damaged in transit",
		Amount:         service.Money{Total: 1<<53 + 1, Currency: "HKD"},
		ChargeTotal:    1<<60 + 5,
		NotifyURL:      "https://papayd.example/wechatpay/notify",
		PayerRefund:    1<<62 + 3,
		PayerCurrency:  "CNY",
		ExchangeRate:   service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 91234567},
		Status:         service.RefundStatusProcessing,
		Channel:        "ORIGINAL",
		RecvAccount:    "招商银行信用卡0403",
		FundSource:     "REFUND_SOURCE_UNSETTLED_FUNDS",
		State:          service.RefundAbnormal,
		FailureCode:    "USER_ACCOUNT_ABNORMAL",
		FailureMessage: "the account is closed",
		LastError:      "NOT_ENOUGH: retry later",
		SuccessTime:    created.Add(time.Minute + 7).In(shanghai),
		CreateTime:     created,
		UpdateTime:     created.Add(2*time.Hour + 1).In(shanghai),
		Attempts:       2,
		LastSendTime:   created.Add(time.Minute + 3).In(shanghai),
		NextCheckTime:  created.Add(5*time.Minute + 13).In(shanghai),
		Checks:         4,
	}
}

// refunds is the record test description of refunds.
var refunds = record[service.Refund]{
	kind: "refund", keyName: "out_refund_no", idName: "refund id", keyPre: "R", idPre: "W",
	full: FullRefund,
	zero: func(key string, created time.Time) service.Refund {
		return service.Refund{OutRefundNo: key, CreateTime: created}
	},
	withNextCheck: func(r service.Refund, next time.Time) service.Refund { r.NextCheckTime = next; return r },
	keys:          func(r service.Refund) (string, string) { return r.OutRefundNo, r.RefundID },
	times: func(r service.Refund) map[string]time.Time {
		return map[string]time.Time{"CreateTime": r.CreateTime, "UpdateTime": r.UpdateTime,
			"SuccessTime": r.SuccessTime, "LastSendTime": r.LastSendTime, "NextCheckTime": r.NextCheckTime}
	},
	create: func(t *testing.T, tx service.Tx, r service.Refund) error { return tx.CreateRefund(t.Context(), r) },
	update: func(t *testing.T, tx service.Tx, r service.Refund) error { return tx.UpdateRefund(t.Context(), r) },
	byKey: func(t *testing.T, r reader, no string) (service.Refund, error) {
		return r.RefundByOutRefundNo(t.Context(), no)
	},
	byID: func(t *testing.T, r reader, id string) (service.Refund, error) {
		return r.RefundByRefundID(t.Context(), id)
	},
}

// createRefunds inserts rs in one transaction and fails the test on error.
func createRefunds(t *testing.T, s service.Store, rs ...service.Refund) {
	t.Helper()
	refunds.createAll(t, s, rs...)
}

// checkRefund fails the test unless s reads want, by each of its keys,
// outside and inside a transaction, with its times in UTC.
func checkRefund(t *testing.T, s service.Store, step string, want service.Refund) {
	t.Helper()
	refunds.check(t, s, step, want)
}

func testRefundRoundTrip(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	created := base.In(shanghai)
	r := FullRefund("R1", "W1", created)
	createRefunds(t, s, r)
	checkRefund(t, s, "create", r)

	// Change every field and clear the times that may be zero; the fields
	// fixed at creation keep their recorded values.
	u := FullRefund("R1", "W2", created.Add(time.Second))
	u.OutTradeNo, u.TransactionID = "T2", "X2"
	u.Merchant = service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	u.Reason, u.Amount, u.ChargeTotal, u.NotifyURL = "other", service.Money{Total: 100, Currency: "USD"}, 200, "https://elsewhere.example"
	u.PayerRefund, u.PayerCurrency, u.ExchangeRate = -1, "USD", service.ExchangeRate{}
	u.Status, u.Channel, u.RecvAccount, u.FundSource = service.RefundStatusSuccess, "BALANCE", "balance", ""
	u.State, u.FailureCode, u.FailureMessage, u.LastError = service.RefundSucceeded, "", "", ""
	u.SuccessTime, u.UpdateTime, u.LastSendTime, u.NextCheckTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	u.Attempts, u.Checks = 5, 0
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateRefund(ctx, u) })
	u.OutTradeNo, u.TransactionID, u.Merchant, u.Reason = r.OutTradeNo, r.TransactionID, r.Merchant, r.Reason
	u.Amount, u.ChargeTotal, u.NotifyURL, u.CreateTime = r.Amount, r.ChargeTotal, r.NotifyURL, r.CreateTime
	checkRefund(t, s, "update", u)
	_, err := s.RefundByRefundID(ctx, "W1")
	checkErr(t, "old refund id after update", err, service.ErrNotFound)

	v := FullRefund("R1", "W2", created)
	inTx(t, s, func(tx service.Tx) error { return tx.UpdateRefund(ctx, v) })
	checkRefund(t, s, "update again", v)
}

// refundNos returns the out_refund_nos of rs, in order.
func refundNos(rs []service.Refund) []string {
	var nos []string
	for _, r := range rs {
		nos = append(nos, r.OutRefundNo)
	}
	return nos
}

func testRefundsOfCharge(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	// Created out of their time order, and another charge's in between.
	var rs []service.Refund
	for _, r := range []struct {
		no, charge string
		at         time.Duration
	}{
		{"R3", "T1", 3 * time.Second}, {"R1", "T1", time.Second}, {"Q1", "T2", 2 * time.Second},
		{"R2", "T1", 2 * time.Second}, {"R4", "T1", 3*time.Second + 1},
	} {
		f := FullRefund(r.no, "", base.Add(r.at))
		f.OutTradeNo = r.charge
		rs = append(rs, f)
	}
	createRefunds(t, s, rs...)
	for _, tt := range []struct {
		charge string
		want   []string
	}{
		{"T1", []string{"R1", "R2", "R3", "R4"}},
		{"T2", []string{"Q1"}},
		{"T9", nil},
		{"", nil},
	} {
		got, err := s.RefundsOfCharge(ctx, tt.charge)
		if err != nil {
			t.Fatalf("RefundsOfCharge(%s): %v", tt.charge, err)
		}
		if diff := cmp.Diff(tt.want, refundNos(got)); diff != "" {
			t.Errorf("RefundsOfCharge(%s) (-want +got):\n%s", tt.charge, diff)
		}
		for _, r := range got {
			want := rs[0]
			for _, c := range rs {
				if c.OutRefundNo == r.OutRefundNo {
					want = c
				}
			}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("RefundsOfCharge(%s): %s (-want +got):\n%s", tt.charge, r.OutRefundNo, diff)
			}
		}
		inTx(t, s, func(tx service.Tx) error {
			got, err := tx.RefundsOfCharge(ctx, tt.charge)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(tt.want, refundNos(got)); diff != "" {
				t.Errorf("RefundsOfCharge(%s) in a tx (-want +got):\n%s", tt.charge, diff)
			}
			return nil
		})
	}
}
