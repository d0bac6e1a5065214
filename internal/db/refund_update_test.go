package db

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// A refund settling with its refund id known leaves refunds_refund_id
// alone; the update of a refund the function did not read names it.
func TestRefundUpdateWritesChangedIndexesOnly(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	prev := fullRefund("R1", "RID1", time.Now())
	prev.State = service.RefundProcessing
	r := prev
	r.State, r.Status, r.SuccessTime, r.UpdateTime = service.RefundSucceeded, "SUCCESS", time.Now(), time.Now()
	set, _, err := changes(refundLife, &prev, &r)
	if err != nil {
		t.Fatal(err)
	}
	query := updateChangedQuery("refunds", "out_refund_no", refundLife, set)
	if diff := cmp.Diff([]string{"refunds_state"}, indexesWritten(t, db, query)); diff != "" {
		t.Errorf("indexes %s writes (-want +got):\n%s", query, diff)
	}
	if diff := cmp.Diff([]string{"refunds_due", "refunds_refund_id", "refunds_state", "sqlite_autoindex_refunds_1"},
		indexesWritten(t, db, updateRefundSQL)); diff != "" {
		t.Errorf("indexes updateRefundSQL writes (-want +got):\n%s", diff)
	}
}

// A transaction's reads of a refund it created, read or updated are the
// row as stored.
func TestRefundReadAfterWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	check := func(name string, tx *tx) {
		t.Helper()
		got, err := tx.RefundByOutRefundNo(ctx, "R1")
		if err != nil {
			t.Fatal(err)
		}
		stored, _, err := tx.reader.refundByOutRefundNo(ctx, "R1")
		if err != nil {
			t.Fatal(err)
		}
		sameAsStored(t, name+": read", stored, got)
	}
	inTx(t, db, func(stx service.Tx) error {
		tx := stx.(*tx)
		if err := tx.CreateRefund(ctx, fullRefund("R1", "RID1", time.Date(2026, 1, 2, 3, 4, 5, 6, shanghai))); err != nil {
			return err
		}
		check("after the insert", tx)
		return nil
	})
	for _, change := range []func(r *service.Refund){
		func(r *service.Refund) { r.Checks++ },
		func(r *service.Refund) { r.RefundID, r.UpdateTime = "RID2", time.Now().In(shanghai) },
		func(r *service.Refund) { r.NextCheckTime = time.Time{} },
		func(*service.Refund) {},
		func(r *service.Refund) { r.Reason = "not written: fixed at creation" },
	} {
		inTx(t, db, func(stx service.Tx) error {
			tx := stx.(*tx)
			r, err := tx.RefundByOutRefundNo(ctx, "R1")
			if err != nil {
				return err
			}
			change(&r)
			if err := tx.UpdateRefund(ctx, r); err != nil {
				return err
			}
			check("after an update", tx)
			return nil
		})
	}
	if r, err := db.reader.RefundByRefundID(ctx, "RID2"); err != nil || r.OutRefundNo != "R1" {
		t.Errorf("by refund id: %v, %v", r.OutRefundNo, err)
	}
	if _, err := db.reader.RefundByRefundID(ctx, "RID1"); err == nil {
		t.Error("the old refund id still finds the refund")
	}
}
