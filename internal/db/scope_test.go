package db

import (
	"strings"
	"testing"
)

// TestSubMchIDsQueryPlans pins that a page of several sub-merchants reads
// one range of the sub_mchid index per sub-merchant, never the table. Its
// sorts are of at most a page per sub-merchant.
func TestSubMchIDsQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	for _, tt := range []struct {
		name, where, index string
	}{
		{"agreements", listAgreementsSQL, "agreements_sub_mchid"},
		{"agreements by state", listAgreementsSQL + listByStateSQL, "agreements_sub_mchid"},
		{"charges", listChargesSQL, "charges_sub_mchid"},
		{"charges in range", listChargesSQL + listChargesFromSQL, "charges_sub_mchid"},
	} {
		query, _ := pageQuery(tt.where, []string{"a", "b", "c"}, nil)
		got := queryPlan(t, db, query)
		t.Logf("%s: %s", tt.name, got)
		if n := strings.Count(got, "INDEX "+tt.index+" "); n != 3 {
			t.Errorf("%s: plan %q uses %s %d times, want once per sub-merchant (3)", tt.name, got, tt.index, n)
		}
		if fullScan.MatchString(got) {
			t.Errorf("%s: plan %q scans a table", tt.name, got)
		}
	}
}
