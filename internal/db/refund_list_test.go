package db

import (
	"strings"
	"testing"
	"time"

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
