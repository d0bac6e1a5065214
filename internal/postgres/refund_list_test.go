package postgres

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

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
		inTx(t, db, func(tx Tx) error {
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
	inTx(t, db, func(tx Tx) error {
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

	inTx(t, db, func(tx Tx) error {
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
