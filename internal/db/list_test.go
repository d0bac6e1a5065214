package db

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// seedList creates agreements A..H. B, C and D share one create_time, so
// only the tiebreaker orders them; the newest first order is H G F E D C B A
// (D, C, B by insertion, i.e. id, descending).
func seedList(t *testing.T, db *DB) {
	t.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := []struct {
		code, openid string
		plan         int64
		state        service.AgreementState
		mch          string
		at           time.Duration
	}{
		{"A", "o1", 1, service.AgreementPending, "m1", 0},
		{"B", "o1", 1, service.AgreementSigned, "m1", time.Second},
		{"C", "o2", 2, service.AgreementSigned, "m1", time.Second},
		{"D", "o2", 1, service.AgreementTerminated, "m2", time.Second},
		{"E", "o1", 2, service.AgreementSigned, "m2", 2 * time.Second},
		{"F", "o3", 1, service.AgreementExpired, "m1", 3 * time.Second},
		{"G", "o1", 1, service.AgreementSigned, "m1", 3*time.Second + time.Microsecond},
		{"H", "o2", 2, service.AgreementPending, "m2", 3*time.Second + time.Microsecond + 1},
	}
	inTx(t, db, func(tx service.Tx) error {
		for _, r := range rows {
			a := fullAgreement(r.code, "", base.Add(r.at))
			a.OpenID, a.PlanID, a.State, a.SubMchID = r.openid, r.plan, r.state, r.mch
			if err := tx.CreateAgreement(t.Context(), a); err != nil {
				return err
			}
		}
		return nil
	})
}

var paramName = regexp.MustCompile(`:(\w+)`)

// TestQueryPlans pins that the lookups and the pages are served by indexes,
// without sorting.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	tests := []struct {
		name, query, index string
	}{
		{"by contract id", agreementByContractIDSQL, "agreements_contract_id"},
		{"by out_contract_code", agreementByOutContractCodeSQL, "sqlite_autoindex_agreements_1"},
		{"page", listAgreementsSQL + listOrderSQL, "agreements_page"},
		{"page by state", listAgreementsSQL + listByStateSQL + listOrderSQL, "agreements_state"},
		{"page by openid", listAgreementsSQL + listByOpenIDSQL + listOrderSQL, "agreements_openid"},
		{"page by plan", listAgreementsSQL + listByPlanIDSQL + listOrderSQL, "agreements_plan_id"},
		{"page by sub_mchid", listAgreementsSQL + listBySubMchIDSQL + listOrderSQL, "agreements_sub_mchid"},
	}
	for _, tt := range tests {
		checkPlan(t, db, tt.name, tt.query, tt.index)
	}
}

// queryPlan returns the EXPLAIN QUERY PLAN details of query, joined by
// "; ", with every parameter bound to NULL.
func queryPlan(t *testing.T, db *DB, query string) string {
	t.Helper()
	args := make([]any, strings.Count(query, "?"))
	for _, m := range paramName.FindAllStringSubmatch(query, -1) {
		args = append(args, sql.Named(m[1], nil))
	}
	rows, err := db.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// fullScan matches a plan step that reads a whole table rather than an
// index ("SCAN t", not "SCAN t USING INDEX i").
var fullScan = regexp.MustCompile(`(^|; )SCAN \w+($|;)`)

// checkPlan fails the test unless query is served by index, without a full
// table scan and without sorting.
func checkPlan(t *testing.T, db *DB, name, query, index string) {
	t.Helper()
	got := queryPlan(t, db, query)
	t.Logf("%s: %s", name, got)
	if !regexp.MustCompile(`USING (COVERING )?INDEX ` + regexp.QuoteMeta(index) + `\b`).MatchString(got) {
		t.Errorf("%s: plan %q does not use index %s", name, got, index)
	}
	if fullScan.MatchString(got) {
		t.Errorf("%s: plan %q scans a table", name, got)
	}
	if strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("%s: plan %q sorts", name, got)
	}
}
