package db

import (
	"testing"
	"time"
)

// dueChargeNos runs DueCharges and returns the out_trade_nos in order.
func dueChargeNos(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	cs, err := db.DueCharges(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueCharges(%v, %d): %v", now, limit, err)
	}
	var nos []string
	for _, c := range cs {
		nos = append(nos, c.OutTradeNo)
	}
	return nos
}

// dueAgreementCodes runs DueAgreements and returns the out_contract_codes
// in order.
func dueAgreementCodes(t *testing.T, db *DB, now time.Time, limit int) []string {
	t.Helper()
	as, err := db.DueAgreements(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueAgreements(%v, %d): %v", now, limit, err)
	}
	var codes []string
	for _, a := range as {
		codes = append(codes, a.OutContractCode)
	}
	return codes
}

// TestDueQueryPlans pins that the due scans read the partial indexes, in
// their order: no table scan, no sort. The partial indexes hold the open
// records only, so a scan costs what is open, not what was ever recorded.
func TestDueQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	checkPlan(t, db, "due charges", dueChargesSQL, "charges_due")
	checkPlan(t, db, "due agreements", dueAgreementsSQL, "agreements_due")

	// Why the queries name their index: the same query without INDEXED BY
	// is planned on the state index with a sort. Logged, not checked: a
	// later SQLite may choose better, and INDEXED BY stays correct.
	for _, q := range []string{
		`SELECT id FROM charges WHERE state IN ('PENDING', 'PROCESSING') AND next_check_time <= :now ORDER BY next_check_time, id LIMIT :limit`,
		`SELECT id FROM agreements WHERE state IN ('PENDING', 'SIGNED') AND next_check_time <= :now ORDER BY next_check_time, id LIMIT :limit`,
	} {
		t.Logf("without INDEXED BY: %s", queryPlan(t, db, q))
	}
}
