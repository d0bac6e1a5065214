package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// fullRefund returns a refund with every field set; its times carry
// nanoseconds and a non-UTC zone.
func fullRefund(outRefundNo, refundID string, created time.Time) service.Refund {
	return service.Refund{
		OutRefundNo:   outRefundNo,
		RefundID:      refundID,
		OutTradeNo:    "T1",
		TransactionID: "X1",
		Merchant:      service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		Reason:        "damaged in transit",
		// Beyond 2^53, so a float anywhere on the way would lose it.
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

// TestFullRefundSetsEveryField keeps the round trip tests honest: a field
// added to service.Refund that the fixture leaves zero would not be
// checked to be stored.
func TestFullRefundSetsEveryField(t *testing.T) {
	t.Parallel()
	checkEveryFieldSet(t, "Refund", fullRefund("R1", "W1", time.Now()))
}

// createRefunds inserts rs in one transaction and fails the test on error.
func createRefunds(t *testing.T, db *DB, rs ...service.Refund) {
	t.Helper()
	inTx(t, db, func(tx Tx) error {
		for _, r := range rs {
			if err := tx.CreateRefund(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestRefundRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 10, 0, 0, 123456789, shanghai)

	r := fullRefund("R1", "W1", created)
	createRefunds(t, db, r)
	check := func(step string, want service.Refund) {
		t.Helper()
		byNo, err := db.RefundByOutRefundNo(ctx, want.OutRefundNo)
		if err != nil {
			t.Fatalf("%s: RefundByOutRefundNo: %v", step, err)
		}
		if diff := cmp.Diff(want, byNo); diff != "" {
			t.Errorf("%s: by out_refund_no (-want +got):\n%s", step, diff)
		}
		for name, tm := range map[string]time.Time{
			"CreateTime": byNo.CreateTime, "SuccessTime": byNo.SuccessTime, "NextCheckTime": byNo.NextCheckTime,
			"UpdateTime": byNo.UpdateTime, "LastSendTime": byNo.LastSendTime,
		} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Errorf("%s: %s in %v, want UTC", step, name, tm.Location())
			}
		}
		inTx(t, db, func(tx Tx) error {
			got, err := tx.RefundByOutRefundNo(ctx, want.OutRefundNo)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: by out_refund_no in tx (-want +got):\n%s", step, diff)
			}
			return nil
		})
		if want.RefundID == "" {
			return
		}
		byID, err := db.RefundByRefundID(ctx, want.RefundID)
		if err != nil {
			t.Fatalf("%s: RefundByRefundID: %v", step, err)
		}
		if diff := cmp.Diff(want, byID); diff != "" {
			t.Errorf("%s: by refund id (-want +got):\n%s", step, diff)
		}
	}
	check("create", r)

	// Change every field; clear the times that can be zero. The fields
	// fixed at creation keep their recorded values.
	u := fullRefund("R1", "W2", created.Add(time.Second))
	u.OutTradeNo, u.TransactionID = "T2", "X2"
	u.Merchant = service.Merchant{SubMchID: "m2", SPAppID: "sp2", SubAppID: "sub2"}
	u.Reason, u.Amount, u.ChargeTotal, u.NotifyURL = "other", service.Money{Total: 100, Currency: "USD"}, 200, "https://elsewhere.example"
	u.PayerRefund, u.PayerCurrency, u.ExchangeRate = -1, "USD", service.ExchangeRate{}
	u.Status, u.Channel, u.RecvAccount, u.FundSource = service.RefundStatusSuccess, "BALANCE", "balance", ""
	u.State, u.FailureCode, u.FailureMessage, u.LastError = service.RefundSucceeded, "", "", ""
	u.SuccessTime, u.UpdateTime, u.LastSendTime, u.NextCheckTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	u.Attempts, u.Checks = 5, 0
	inTx(t, db, func(tx Tx) error { return tx.UpdateRefund(ctx, u) })
	u.OutTradeNo, u.TransactionID, u.Merchant, u.Reason = r.OutTradeNo, r.TransactionID, r.Merchant, r.Reason
	u.Amount, u.ChargeTotal, u.NotifyURL, u.CreateTime = r.Amount, r.ChargeTotal, r.NotifyURL, r.CreateTime
	check("update", u)
	if _, err := db.RefundByRefundID(ctx, "W1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("old refund id after update: err = %v, want ErrNotFound", err)
	}

	// And back to all fields.
	v := fullRefund("R1", "W2", created)
	inTx(t, db, func(tx Tx) error { return tx.UpdateRefund(ctx, v) })
	check("update again", v)
}

func TestRefundZeroValues(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	r := service.Refund{OutRefundNo: "R0", CreateTime: time.Unix(0, 1).UTC()}
	createRefunds(t, db, r)
	got, err := db.RefundByOutRefundNo(ctx, "R0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// The zero time is NULL in the table, not 0: an unscheduled refund is
	// never due.
	var nulls int
	err = db.pool.QueryRow(ctx, `SELECT (success_time IS NULL)::int + (update_time IS NULL)::int +
		(last_send_time IS NULL)::int + (next_check_time IS NULL)::int FROM refunds WHERE out_refund_no = 'R0'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if nulls != 4 {
		t.Errorf("%d of success_time, update_time, last_send_time, next_check_time are NULL, want 4", nulls)
	}
}

func TestRefundNeedsCreateTime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	err := db.InTx(ctx, func(tx Tx) error { return tx.CreateRefund(ctx, service.Refund{OutRefundNo: "R0"}) })
	if err == nil {
		t.Error("CreateRefund without a create time succeeded, want an error")
	}
}

func TestRefundConflicts(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		existing []service.Refund
		op       func(Tx) error
		want     error
	}{{
		name:     "duplicate out_refund_no",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R1", "W2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate out_refund_no, both without refund id",
		existing: []service.Refund{fullRefund("R1", "", created)},
		op: func(tx Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R1", "", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R2", "W1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty refund ids",
		existing: []service.Refund{fullRefund("R1", "", created)},
		op: func(tx Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R2", "", created))
		},
	}, {
		name:     "update to another refund's refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created), fullRefund("R2", "", created)},
		op: func(tx Tx) error {
			return tx.UpdateRefund(t.Context(), fullRefund("R2", "W1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "update keeping its own refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx Tx) error {
			return tx.UpdateRefund(t.Context(), fullRefund("R1", "W1", created.Add(time.Hour)))
		},
	}, {
		name:     "update missing",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx Tx) error {
			return tx.UpdateRefund(t.Context(), fullRefund("R2", "W2", created))
		},
		want: service.ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := openTestDB(t)
			createRefunds(t, db, tt.existing...)
			err := db.InTx(t.Context(), tt.op)
			if !errors.Is(err, tt.want) { // errors.Is(nil, nil) is true
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			// A failed write changed nothing.
			for _, want := range tt.existing {
				got, err := db.RefundByOutRefundNo(t.Context(), want.OutRefundNo)
				if err != nil {
					t.Fatal(err)
				}
				if tt.want != nil {
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s after a refused write (-want +got):\n%s", want.OutRefundNo, diff)
					}
				}
			}
		})
	}
}

func TestRefundNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	// A refund without a refund id: the empty id must not find it.
	createRefunds(t, db, fullRefund("R1", "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	tests := []struct {
		name string
		get  func(service.RefundReader) error
	}{
		{"unknown out_refund_no", func(r service.RefundReader) error {
			_, err := r.RefundByOutRefundNo(ctx, "nope")
			return err
		}},
		{"empty out_refund_no", func(r service.RefundReader) error {
			_, err := r.RefundByOutRefundNo(ctx, "")
			return err
		}},
		{"unknown refund id", func(r service.RefundReader) error {
			_, err := r.RefundByRefundID(ctx, "nope")
			return err
		}},
		{"empty refund id", func(r service.RefundReader) error {
			_, err := r.RefundByRefundID(ctx, "")
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.get(db); !errors.Is(err, service.ErrNotFound) {
			t.Errorf("%s on DB: err = %v, want ErrNotFound", tt.name, err)
		}
		_ = db.InTx(ctx, func(tx Tx) error {
			if err := tt.get(tx); !errors.Is(err, service.ErrNotFound) {
				t.Errorf("%s in tx: err = %v, want ErrNotFound", tt.name, err)
			}
			return nil
		})
	}
}

// TestRefundedTotal: UpdateCharge writes the refunded total, and only the
// charge it names.
func TestRefundedTotal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c1, c2 := fullCharge("T1", "X1", created), fullCharge("T2", "X2", created)
	c1.RefundedTotal, c2.RefundedTotal = 0, 0
	createCharges(t, db, c1, c2)
	for _, total := range []int64{300, 1<<53 + 1, 0} {
		c1.RefundedTotal = total
		inTx(t, db, func(tx Tx) error { return tx.UpdateCharge(ctx, c1) })
		for _, want := range []service.Charge{c1, c2} {
			got, err := db.ChargeByOutTradeNo(ctx, want.OutTradeNo)
			if err != nil {
				t.Fatal(err)
			}
			if got.RefundedTotal != want.RefundedTotal {
				t.Errorf("after writing %d to T1: %s refunded_total %d, want %d", total, want.OutTradeNo, got.RefundedTotal, want.RefundedTotal)
			}
		}
	}
}

func TestRefundTimeOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	r := fullRefund("R1", "", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	r.NextCheckTime = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.InTx(ctx, func(tx Tx) error { return tx.CreateRefund(ctx, r) }); err == nil {
		t.Fatal("CreateRefund of a check time in 2300 succeeded, want an error")
	}
	r.NextCheckTime = time.Time{}
	createRefunds(t, db, r)
	r.SuccessTime = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.InTx(ctx, func(tx Tx) error { return tx.UpdateRefund(ctx, r) }); err == nil {
		t.Fatal("UpdateRefund of a success time in 1600 succeeded, want an error")
	}
}
