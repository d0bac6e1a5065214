package db

import (
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

// An update of a charge the function read names only the columns that
// changed, so SQLite leaves the indexes of the others alone: settling a
// charge whose transaction id is known does not touch
// charges_transaction_id, and the row is found by its id, without the
// out_trade_no index.
func TestChargeUpdateWritesChangedIndexesOnly(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	prev := openCharge(1, time.Now())
	c := prev
	c.TradeState, c.TradeStateDesc, c.State = "SUCCESS", "支付成功", service.ChargeSucceeded
	c.PayerTotal, c.SuccessTime, c.UpdateTime = c.Amount.Total, time.Now(), time.Now()
	c.NextCheckTime = time.Now().Add(24 * time.Hour)
	set, args, err := changes(chargeLife, &prev, &c)
	if err != nil {
		t.Fatal(err)
	}
	query := updateChangedQuery("charges", "out_trade_no", chargeLife, set)
	if want := len(strings.Split(query, "?")) - 3; len(args) != want {
		t.Fatalf("%d changed values for %d columns in %q", len(args), want, query)
	}
	for _, col := range []string{"transaction_id", "payer_currency", "bank_type", "check_attempts"} {
		if strings.Contains(query, col+" =") {
			t.Errorf("%q writes %s, which did not change", query, col)
		}
	}
	got := indexesWritten(t, db, query)
	if diff := cmp.Diff([]string{"charges_due", "charges_open", "charges_state"}, got); diff != "" {
		t.Errorf("indexes %s writes (-want +got):\n%s", query, diff)
	}
	// updateChargeSQL, for a charge the function has not read, names
	// every column of a charge's life, and finds the row through the
	// out_trade_no index.
	all := indexesWritten(t, db, updateChargeSQL)
	if diff := cmp.Diff([]string{"charges_due", "charges_open", "charges_state", "charges_transaction_id",
		"sqlite_autoindex_charges_1"}, all); diff != "" {
		t.Errorf("indexes updateChargeSQL writes (-want +got):\n%s", diff)
	}
	if plan := queryPlan(t, db, query); !strings.Contains(plan, "USING INTEGER PRIMARY KEY") {
		t.Errorf("%q: plan %q does not find the row by its id", query, plan)
	}
}

// indexesWritten returns the indexes whose cursors query's program opens
// for writing, sorted, from EXPLAIN (p2 of OpenWrite is the root page).
func indexesWritten(t *testing.T, db *DB, query string) []string {
	t.Helper()
	roots := map[int64]string{}
	rows, err := db.read.QueryContext(t.Context(), `SELECT rootpage, name FROM sqlite_schema WHERE type = 'index'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var root int64
		var name string
		if err := rows.Scan(&root, &name); err != nil {
			t.Fatal(err)
		}
		roots[root] = name
	}
	rows.Close()
	args := make([]any, strings.Count(query, "?"))
	for _, m := range paramName.FindAllStringSubmatch(query, -1) {
		args = append(args, sql.Named(m[1], nil))
	}
	rows, err = db.read.QueryContext(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var addr, p1, p2, p3 int64
		var opcode string
		var comment sql.NullString
		var p4 sql.NullString
		var p5 any
		if err := rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			t.Fatal(err)
		}
		if name, ok := roots[p2]; ok && opcode == "OpenWrite" {
			got = append(got, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// An update that changes one column writes it and leaves every other
// column, and every index lookup, as they were; an update that changes
// nothing writes nothing and still answers the read after it.
func TestChargeUpdateOneColumn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	full := fullCharge("M1", "W1", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	createCharges(t, db, full)
	var before service.Charge
	inTx(t, db, func(tx service.Tx) error {
		var err error
		before, err = tx.ChargeByOutTradeNo(ctx, "M1")
		return err
	})
	steps := []struct {
		name   string
		change func(c *service.Charge)
	}{
		{"refunded total", func(c *service.Charge) { c.RefundedTotal++ }},
		{"transaction id", func(c *service.Charge) { c.TransactionID = "W2" }},
		{"state", func(c *service.Charge) { c.State = service.ChargeSucceeded }},
		{"next check time", func(c *service.Charge) { c.NextCheckTime = time.Time{} }},
		{"nothing", func(*service.Charge) {}},
	}
	want := before
	for _, step := range steps {
		step.change(&want)
		inTx(t, db, func(tx service.Tx) error {
			c, err := tx.ChargeByOutTradeNo(ctx, "M1")
			if err != nil {
				return err
			}
			step.change(&c)
			if err := tx.UpdateCharge(ctx, c); err != nil {
				return err
			}
			got, err := tx.ChargeByOutTradeNo(ctx, "M1")
			if diff := cmp.Diff(want, got); err == nil && diff != "" {
				t.Errorf("%s: read in the transaction (-want +got):\n%s", step.name, diff)
			}
			return err
		})
		got, err := db.reader.ChargeByOutTradeNo(ctx, "M1")
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: stored (-want +got):\n%s", step.name, diff)
		}
		if got, err := db.reader.ChargeByTransactionID(ctx, want.TransactionID); err != nil || got.OutTradeNo != "M1" {
			t.Errorf("%s: by transaction id %s: %v, %v", step.name, want.TransactionID, got.OutTradeNo, err)
		}
		page, _, err := db.reader.ListCharges(ctx, service.ChargeFilter{State: want.State, PageSize: 10})
		if err != nil || len(page) != 1 {
			t.Errorf("%s: charges in state %s: %d, %v", step.name, want.State, len(page), err)
		}
	}
	if _, err := db.reader.ChargeByTransactionID(ctx, "W1"); err == nil {
		t.Error("the old transaction id still finds the charge")
	}
}

// An update of a charge read in the transaction still refuses a
// transaction id another charge holds, and leaves the row as it was.
func TestChargeUpdateChangedConflict(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	createCharges(t, db, fullCharge("M1", "W1", time.Now()), fullCharge("M2", "W2", time.Now()))
	err := db.InTx(ctx, func(tx service.Tx) error {
		c, err := tx.ChargeByOutTradeNo(ctx, "M1")
		if err != nil {
			return err
		}
		c.TransactionID, c.RefundedTotal = "W2", 1
		return tx.UpdateCharge(ctx, c)
	})
	if !errors.Is(err, service.ErrConflict) {
		t.Fatalf("update to another charge's transaction id: %v, want ErrConflict", err)
	}
	if c, err := db.reader.ChargeByOutTradeNo(ctx, "M1"); err != nil || c.TransactionID != "W1" {
		t.Errorf("after the refused update: %q, %v", c.TransactionID, err)
	}
}

// A transaction's read of a charge it just created is the row as stored
// (times in UTC, promotion detail decoded), without reading it.
func TestChargeReadAfterCreate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	c := fullCharge("M1", "W1", time.Date(2026, 1, 2, 3, 4, 5, 6, shanghai))
	inTx(t, db, func(stx service.Tx) error {
		tx := stx.(*tx)
		if err := tx.CreateCharge(ctx, c); err != nil {
			return err
		}
		if !tx.charge.ok {
			t.Error("the charge is not kept after its insert")
		}
		got, err := tx.ChargeByOutTradeNo(ctx, "M1")
		if err != nil {
			return err
		}
		stored, id, err := tx.reader.chargeByOutTradeNo(ctx, "M1")
		if err != nil {
			return err
		}
		sameAsStored(t, "read after the insert", stored, got)
		if tx.charge.id != id {
			t.Errorf("kept id %d, stored %d", tx.charge.id, id)
		}
		return nil
	})
}
