package db

import (
	"database/sql"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
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
	inTx(t, db, func(tx service.Tx) error {
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
		inTx(t, db, func(tx service.Tx) error {
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
	inTx(t, db, func(tx service.Tx) error { return tx.UpdateRefund(ctx, u) })
	u.OutTradeNo, u.TransactionID, u.Merchant, u.Reason = r.OutTradeNo, r.TransactionID, r.Merchant, r.Reason
	u.Amount, u.ChargeTotal, u.NotifyURL, u.CreateTime = r.Amount, r.ChargeTotal, r.NotifyURL, r.CreateTime
	check("update", u)
	if _, err := db.RefundByRefundID(ctx, "W1"); !errors.Is(err, service.ErrNotFound) {
		t.Errorf("old refund id after update: err = %v, want ErrNotFound", err)
	}

	// And back to all fields.
	v := fullRefund("R1", "W2", created)
	inTx(t, db, func(tx service.Tx) error { return tx.UpdateRefund(ctx, v) })
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
	// The zero time is NULL in the file, not 0: an unscheduled refund is
	// never due.
	var nulls int
	err = db.read.QueryRowContext(ctx, `SELECT (success_time IS NULL) + (update_time IS NULL) +
		(last_send_time IS NULL) + (next_check_time IS NULL) FROM refunds WHERE out_refund_no = 'R0'`).Scan(&nulls)
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
	err := db.InTx(ctx, func(tx service.Tx) error { return tx.CreateRefund(ctx, service.Refund{OutRefundNo: "R0"}) })
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
		op       func(service.Tx) error
		want     error
	}{{
		name:     "duplicate out_refund_no",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx service.Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R1", "W2", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate out_refund_no, both without refund id",
		existing: []service.Refund{fullRefund("R1", "", created)},
		op: func(tx service.Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R1", "", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "duplicate refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx service.Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R2", "W1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "two empty refund ids",
		existing: []service.Refund{fullRefund("R1", "", created)},
		op: func(tx service.Tx) error {
			return tx.CreateRefund(t.Context(), fullRefund("R2", "", created))
		},
	}, {
		name:     "update to another refund's refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created), fullRefund("R2", "", created)},
		op: func(tx service.Tx) error {
			return tx.UpdateRefund(t.Context(), fullRefund("R2", "W1", created))
		},
		want: service.ErrConflict,
	}, {
		name:     "update keeping its own refund id",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx service.Tx) error {
			return tx.UpdateRefund(t.Context(), fullRefund("R1", "W1", created.Add(time.Hour)))
		},
	}, {
		name:     "update missing",
		existing: []service.Refund{fullRefund("R1", "W1", created)},
		op: func(tx service.Tx) error {
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
		_ = db.InTx(ctx, func(tx service.Tx) error {
			if err := tt.get(tx); !errors.Is(err, service.ErrNotFound) {
				t.Errorf("%s in tx: err = %v, want ErrNotFound", tt.name, err)
			}
			return nil
		})
	}
}

// refundBase is the create time of refund A of seedRefunds.
var refundBase = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

// seedRefunds creates refunds A..H. B, C and D share one create_time, so
// only the tiebreaker orders them; the newest first order is H G F E D C B
// A. Charges, states and sub-merchants vary independently.
func seedRefunds(t *testing.T, db *DB) {
	t.Helper()
	rows := []struct {
		no, trade string
		state     service.RefundState
		mch       string
		at        time.Duration
	}{
		{"A", "t1", service.RefundPending, "m1", 0},
		{"B", "t1", service.RefundSucceeded, "m1", time.Second},
		{"C", "t2", service.RefundSucceeded, "m1", time.Second},
		{"D", "t3", service.RefundFailed, "m2", time.Second},
		{"E", "t1", service.RefundProcessing, "m1", 2 * time.Second},
		{"F", "t3", service.RefundClosed, "m2", 3 * time.Second},
		{"G", "t2", service.RefundSucceeded, "m1", 3*time.Second + time.Microsecond},
		{"H", "t3", service.RefundAbnormal, "m2", 3*time.Second + time.Microsecond + 1},
	}
	var rs []service.Refund
	for _, r := range rows {
		f := fullRefund(r.no, "W"+r.no, refundBase.Add(r.at))
		f.OutTradeNo, f.TransactionID, f.State, f.SubMchID = r.trade, "X"+r.trade, r.state, r.mch
		rs = append(rs, f)
	}
	createRefunds(t, db, rs...)
}

// refundNos returns the out_refund_nos of rs in order.
func refundNos(rs []service.Refund) []string {
	var nos []string
	for _, r := range rs {
		nos = append(nos, r.OutRefundNo)
	}
	return nos
}

// listAllRefunds pages through f with page size n and returns the
// out_refund_nos in order.
func listAllRefunds(t *testing.T, r service.RefundReader, f service.RefundFilter, n int) (nos []string, pages int) {
	t.Helper()
	f.PageSize = n
	for {
		rs, next, err := r.ListRefunds(t.Context(), f)
		if err != nil {
			t.Fatalf("ListRefunds(%+v): %v", f, err)
		}
		if len(rs) > n {
			t.Fatalf("page of %d, want at most %d", len(rs), n)
		}
		pages++
		nos = append(nos, refundNos(rs)...)
		if next == "" {
			return nos, pages
		}
		f.PageToken = next
	}
}

func TestRefundsOfCharge(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	seedRefunds(t, db)
	for _, tt := range []struct {
		trade string
		want  []string
	}{
		// Oldest first; B was recorded before E at a later time, and the
		// id breaks the tie of B, C and D.
		{"t1", []string{"A", "B", "E"}},
		{"t2", []string{"C", "G"}},
		{"t3", []string{"D", "F", "H"}},
		{"nope", nil},
		{"", nil},
	} {
		got, err := db.RefundsOfCharge(ctx, tt.trade)
		if err != nil {
			t.Fatalf("RefundsOfCharge(%s): %v", tt.trade, err)
		}
		if diff := cmp.Diff(tt.want, refundNos(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.trade, diff)
		}
		inTx(t, db, func(tx service.Tx) error {
			got, err := tx.RefundsOfCharge(ctx, tt.trade)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(tt.want, refundNos(got)); diff != "" {
				t.Errorf("%s in tx (-want +got):\n%s", tt.trade, diff)
			}
			return nil
		})
	}
	// Whole rows, as recorded.
	want := fullRefund("Z", "WZ", refundBase.Add(time.Hour))
	want.OutTradeNo = "t9"
	createRefunds(t, db, want)
	got, err := db.RefundsOfCharge(ctx, "t9")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]service.Refund{want}, got); diff != "" {
		t.Errorf("t9 (-want +got):\n%s", diff)
	}
}

func TestListRefundsFilters(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedRefunds(t, db)
	tests := []struct {
		name string
		f    service.RefundFilter
		want []string
	}{
		{"all", service.RefundFilter{}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"out_trade_no", service.RefundFilter{OutTradeNo: "t1"}, []string{"E", "B", "A"}},
		{"state", service.RefundFilter{State: service.RefundSucceeded}, []string{"G", "C", "B"}},
		{"sub_mchid", service.RefundFilter{SubMchID: "m2"}, []string{"H", "F", "D"}},
		{"out_trade_no and state", service.RefundFilter{OutTradeNo: "t2", State: service.RefundSucceeded}, []string{"G", "C"}},
		{"all filters", service.RefundFilter{OutTradeNo: "t1", State: service.RefundSucceeded, SubMchID: "m1"}, []string{"B"}},
		{"out_trade_no of another sub-merchant", service.RefundFilter{OutTradeNo: "t3", SubMchID: "m1"}, nil},
		{"none match", service.RefundFilter{OutTradeNo: "nope"}, nil},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, 3, 500} {
			got, pages := listAllRefunds(t, db, tt.f, n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, page size %d (-want +got):\n%s", tt.name, n, diff)
			}
			if want := max(1, (len(tt.want)+n-1)/n); pages != want {
				t.Errorf("%s, page size %d: %d pages, want %d", tt.name, n, pages, want)
			}
		}
	}
}

func TestListRefundsSubMchIDs(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedRefunds(t, db)
	tests := []struct {
		name string
		f    service.RefundFilter
		want []string
	}{
		{"one", service.RefundFilter{SubMchIDs: []string{"m2"}}, []string{"H", "F", "D"}},
		{"two", service.RefundFilter{SubMchIDs: []string{"m2", "m1"}}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"two, one unknown", service.RefundFilter{SubMchIDs: []string{"m9", "m2"}}, []string{"H", "F", "D"}},
		{"none known", service.RefundFilter{SubMchIDs: []string{"m8", "m9"}}, nil},
		{"many", service.RefundFilter{SubMchIDs: manyMchIDs("m2")}, []string{"H", "F", "D"}},
		{"with state", service.RefundFilter{State: service.RefundSucceeded, SubMchIDs: []string{"m1", "m2"}}, []string{"G", "C", "B"}},
		{"with out_trade_no", service.RefundFilter{OutTradeNo: "t3", SubMchIDs: []string{"m1", "m9"}}, nil},
		{"sub_mchid in the set", service.RefundFilter{SubMchID: "m1", SubMchIDs: []string{"m1", "m2"}}, []string{"G", "E", "C", "B", "A"}},
		{"sub_mchid outside the set", service.RefundFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
		{"sub_mchid outside many", service.RefundFilter{SubMchID: "m2", SubMchIDs: manyMchIDs("m1")}, nil},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, 3, 500} {
			got, pages := listAllRefunds(t, db, tt.f, n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, page size %d (-want +got):\n%s", tt.name, n, diff)
			}
			if want := max(1, (len(tt.want)+n-1)/n); pages != want {
				t.Errorf("%s, page size %d: %d pages, want %d", tt.name, n, pages, want)
			}
		}
	}
}

func TestListRefundsReturnsFullRows(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	r := fullRefund("R1", "W1", refundBase)
	createRefunds(t, db, r)
	got, next, err := db.ListRefunds(t.Context(), service.RefundFilter{PageSize: 10})
	if err != nil || next != "" {
		t.Fatalf("ListRefunds: next %q, err %v", next, err)
	}
	if diff := cmp.Diff([]service.Refund{r}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestListRefundsInTx(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedRefunds(t, db)
	inTx(t, db, func(tx service.Tx) error {
		got, _ := listAllRefunds(t, tx, service.RefundFilter{State: service.RefundSucceeded}, 1)
		if diff := cmp.Diff([]string{"G", "C", "B"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestListRefundsBadToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	seedRefunds(t, db)
	seedCharges(t, db)
	seedList(t, db)
	filter := service.RefundFilter{PageSize: 1, OutTradeNo: "t1", SubMchIDs: []string{"m1", "m2"}}
	_, next, err := db.ListRefunds(ctx, filter)
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}
	_, chargeToken, err := db.ListCharges(ctx, service.ChargeFilter{PageSize: 1})
	if err != nil || chargeToken == "" {
		t.Fatalf("charges: next %q, err %v", chargeToken, err)
	}
	_, agreementToken, err := db.ListAgreements(ctx, service.AgreementFilter{PageSize: 1})
	if err != nil || agreementToken == "" {
		t.Fatalf("agreements: next %q, err %v", agreementToken, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	badVersion := append([]byte{9}, raw[1:]...)
	with := func(edit func(*service.RefundFilter)) service.RefundFilter {
		f := filter
		edit(&f)
		return f
	}
	tests := []struct {
		name  string
		token string
		f     service.RefundFilter
	}{
		{"not base64", "!!!", filter},
		{"too short", next[:10], filter},
		{"too long", next + "AAAA", filter},
		{"unknown version", base64.RawURLEncoding.EncodeToString(badVersion), filter},
		{"other out_trade_no", next, with(func(f *service.RefundFilter) { f.OutTradeNo = "t2" })},
		{"out_trade_no moved to sub_mchid", next, with(func(f *service.RefundFilter) { f.OutTradeNo, f.SubMchID = "", f.OutTradeNo })},
		{"state added", next, with(func(f *service.RefundFilter) { f.State = service.RefundPending })},
		{"narrower set", next, with(func(f *service.RefundFilter) { f.SubMchIDs = []string{"m1", "m3"} })},
		{"set dropped", next, with(func(f *service.RefundFilter) { f.SubMchIDs = nil })},
		{"filter dropped", next, service.RefundFilter{PageSize: 1}},
		{"a ListCharges token", chargeToken, service.RefundFilter{PageSize: 1}},
		{"a ListAgreements token", agreementToken, service.RefundFilter{PageSize: 1}},
	}
	for _, tt := range tests {
		tt.f.PageToken = tt.token
		_, _, err := db.ListRefunds(ctx, tt.f)
		if !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", tt.name, err)
		}
	}
	// The same set in another order, with a duplicate, is the same filter.
	f := filter
	f.SubMchIDs, f.PageToken = []string{"m2", "m1", "m2"}, next
	if got, _, err := db.ListRefunds(ctx, f); err != nil || len(got) != 1 || got[0].OutRefundNo != "B" {
		t.Errorf("token with the set reordered: %v, %v; want B", refundNos(got), err)
	}
	// A refund token is not one of ListCharges.
	if _, _, err := db.ListCharges(ctx, service.ChargeFilter{PageSize: 1, PageToken: next}); !errors.Is(err, service.ErrInvalidPageToken) {
		t.Errorf("a ListRefunds token in ListCharges: err = %v, want ErrInvalidPageToken", err)
	}
}

func TestListRefundsPageSize(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, n := range []int{0, -1} {
		if _, _, err := db.ListRefunds(t.Context(), service.RefundFilter{PageSize: n}); err == nil {
			t.Errorf("page size %d: no error", n)
		}
	}
}

// dueRefundNos runs DueRefunds and returns the out_refund_nos in order.
func dueRefundNos(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	rs, err := db.DueRefunds(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueRefunds(%v, %d): %v", now, limit, err)
	}
	return refundNos(rs)
}

// TestDueRefunds covers the boundaries of dueRows (see due_test.go): due
// are the scheduled refunds at or before now, earliest first, ties in
// record order, whatever their state.
func TestDueRefunds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	rs := map[string]service.Refund{}
	var all []service.Refund
	for i, row := range dueRows {
		r := fullRefund(row.key, "", dueNow.Add(-time.Duration(len(dueRows)-i)*time.Hour))
		r.State, r.NextCheckTime = service.RefundPending, time.Time{}
		if i%2 == 1 {
			r.State = service.RefundProcessing
		}
		if !row.open {
			r.State = service.RefundSucceeded
		}
		if row.next != nil {
			r.NextCheckTime = dueNow.Add(*row.next)
		}
		rs[row.key] = r
		all = append(all, r)
	}
	createRefunds(t, db, all...)

	if diff := cmp.Diff([]string{"B", "E", "I", "D", "A"}, dueRefundNos(t, db, dueNow, 100)); diff != "" {
		t.Errorf("due (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"B", "E"}, dueRefundNos(t, db, dueNow, 2)); diff != "" {
		t.Errorf("limit 2 (-want +got):\n%s", diff)
	}
	if got := dueRefundNos(t, db, dueNow.Add(-2*time.Hour), 100); got != nil {
		t.Errorf("before every check: %v, want none", got)
	}
	if diff := cmp.Diff([]string{"B", "E", "I", "D", "A", "C"}, dueRefundNos(t, db, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 100)); diff != "" {
		t.Errorf("after 2262 (-want +got):\n%s", diff)
	}
	if got := dueRefundNos(t, db, time.Time{}, 100); got != nil {
		t.Errorf("at the zero time: %v, want none", got)
	}
	got, err := db.DueRefunds(ctx, dueNow, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]service.Refund{rs["B"]}, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}

	inTx(t, db, func(tx service.Tx) error {
		ended := rs["B"]
		ended.State, ended.NextCheckTime = service.RefundSucceeded, time.Time{}
		scheduled := rs["F"]
		scheduled.NextCheckTime = dueNow.Add(-30 * time.Minute)
		later := rs["E"]
		later.NextCheckTime, later.Checks = dueNow.Add(time.Hour), 1
		for _, r := range []service.Refund{ended, scheduled, later} {
			if err := tx.UpdateRefund(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if diff := cmp.Diff([]string{"F", "I", "D", "A"}, dueRefundNos(t, db, dueNow, 100)); diff != "" {
		t.Errorf("after updates (-want +got):\n%s", diff)
	}
	for _, n := range []int{0, -1} {
		if _, err := db.DueRefunds(ctx, dueNow, n); err == nil {
			t.Errorf("DueRefunds limit %d: no error", n)
		}
	}
}

// TestRefundQueryPlans pins that the lookups, the pages, a charge's
// refunds and the due scan are served by indexes, without a table scan or
// a sort.
func TestRefundQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	tests := []struct {
		name, query, index string
	}{
		{"by out_refund_no", refundByOutRefundNoSQL, "sqlite_autoindex_refunds_1"},
		{"by refund id", refundByRefundIDSQL, "refunds_refund_id"},
		{"update", updateRefundSQL, "sqlite_autoindex_refunds_1"},
		{"of a charge", refundsOfChargeSQL, "refunds_out_trade_no"},
		{"page", listRefundsSQL + listOrderSQL, "refunds_page"},
		{"page by out_trade_no", listRefundsSQL + listRefundsByOutTradeNoSQL + listOrderSQL, "refunds_out_trade_no"},
		{"page by state", listRefundsSQL + listRefundsByStateSQL + listOrderSQL, "refunds_state"},
		{"page by sub_mchid", listRefundsSQL + listRefundsBySubMchIDSQL + listOrderSQL, "refunds_sub_mchid"},
		{"due", dueRefundsSQL, "refunds_due"},
		{"stats", statsRefundsSQL, "refunds_state"},
		{"notifications by out_refund_no", `SELECT id FROM notifications WHERE out_refund_no = ?`, "notifications_out_refund_no"},
	}
	for _, tt := range tests {
		checkPlan(t, db, tt.name, tt.query, tt.index)
	}
	// A page of several sub-merchants: one range of the sub_mchid index
	// per sub-merchant.
	for _, where := range []string{listRefundsSQL, listRefundsSQL + listRefundsByStateSQL} {
		query, _ := pageQuery(where, []string{"a", "b", "c"}, nil)
		got := queryPlan(t, db, query)
		if n := strings.Count(got, "INDEX refunds_sub_mchid "); n != 3 || fullScan.MatchString(got) {
			t.Errorf("plan %q: refunds_sub_mchid %d times, want 3, and no table scan", got, n)
		}
	}
}

// TestRefundStats: the record counts include the refunds by state.
func TestRefundStats(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedRefunds(t, db)
	s, err := db.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"PENDING": 1, "PROCESSING": 1, "SUCCEEDED": 3, "FAILED": 1, "CLOSED": 1, "ABNORMAL": 1}
	if diff := cmp.Diff(want, s.Refunds); diff != "" {
		t.Errorf("refunds by state (-want +got):\n%s", diff)
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
		inTx(t, db, func(tx service.Tx) error { return tx.UpdateCharge(ctx, c1) })
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

// insertV10NotificationSQL is how papayd wrote a notification under schema
// version 10, before out_refund_no. Frozen, like insertV2ChargeSQL.
const insertV10NotificationSQL = `INSERT INTO notifications
	(id, sp_mchid, sub_mchid, event_type, summary, create_time, receive_time, outcome, out_contract_code,
	contract_id, out_trade_no, transaction_id, resource)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// TestUpgradeFromVersion10 builds a database file the way papayd before
// refunds (migrations 0001 to 0010) left it, with a charge and a
// notification, and opens it: the charge has nothing refunded, the
// notification no refund, and the file works as a new one.
func TestUpgradeFromVersion10(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	created := time.Date(2026, 2, 1, 8, 0, 0, 5, time.UTC)
	c := fullCharge("T1", "X1", created)
	// Columns of 0003 and 0004 the frozen insert does not write.
	c.NextCheckTime, c.CheckAttempts, c.NotifyURL, c.LastSendTime = time.Time{}, 0, "", time.Time{}
	c.RefundedTotal = 0
	n := service.NotificationRecord{ID: "N1", SpMchID: "SP", SubMchID: "SUB", EventType: service.EventTransactionSuccess,
		Summary: "paid", CreateTime: created, ReceiveTime: created.Add(time.Second), Outcome: service.OutcomeApplied,
		OutTradeNo: "T1", TransactionID: "X1", Resource: []byte(`{"transaction_id":"X1"}`)}
	oldDB(t, path, 10, func(sqlTx *sql.Tx) error {
		if _, err := sqlTx.ExecContext(ctx, insertV2ChargeSQL, chargeArgs(c)...); err != nil {
			return err
		}
		_, err := sqlTx.ExecContext(ctx, insertV10NotificationSQL, n.ID, n.SpMchID, n.SubMchID, n.EventType, n.Summary,
			timeArg(n.CreateTime), timeArg(n.ReceiveTime), string(n.Outcome), n.OutContractCode, n.ContractID,
			n.OutTradeNo, n.TransactionID, n.Resource)
		return err
	})

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 10 file: %v", err)
	}
	defer db.Close()
	if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
		t.Errorf("schema_migrations (-want +got):\n%s", diff)
	}
	got, err := db.ChargeByOutTradeNo(ctx, "T1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("charge (-want +got):\n%s", diff)
	}
	// readNotification does not read the key; NotificationRecorded finds
	// the notification by it.
	want := n
	want.SpMchID, want.SubMchID = "", ""
	if diff := cmp.Diff(want, readNotification(t, db, "N1")); diff != "" {
		t.Errorf("notification (-want +got):\n%s", diff)
	}
	inTx(t, db, func(tx service.Tx) error {
		seen, err := tx.NotificationRecorded(ctx, service.NotificationKey{SpMchID: "SP", SubMchID: "SUB", ID: "N1"})
		if err != nil || !seen {
			t.Errorf("notification N1 by its key after upgrade: %v, %v", seen, err)
		}
		return nil
	})
	if fresh := openTestDB(t); !cmp.Equal(schema(t, fresh), schema(t, db)) {
		t.Errorf("schema of the upgraded file (-new file +upgraded):\n%s", cmp.Diff(schema(t, fresh), schema(t, db)))
	}

	// The old charge is refunded as a new one would be.
	r := fullRefund("R1", "W1", created.Add(time.Hour))
	c.RefundedTotal = 250
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.CreateRefund(ctx, r); err != nil {
			return err
		}
		return tx.UpdateCharge(ctx, c)
	})
	if got, err := db.RefundsOfCharge(ctx, "T1"); err != nil || len(got) != 1 || got[0].OutRefundNo != "R1" {
		t.Errorf("refunds of T1 after upgrade: %v, %v", refundNos(got), err)
	}
	if got, err := db.ChargeByOutTradeNo(ctx, "T1"); err != nil || got.RefundedTotal != 250 {
		t.Errorf("refunded_total after upgrade: %d, %v; want 250", got.RefundedTotal, err)
	}
}
