package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// manyMchIDs is more sub-merchants than a page query merges branch by
// branch (maxListBranches), with extra among them.
func manyMchIDs(extra ...string) []string {
	ids := append([]string(nil), extra...)
	for i := range maxListBranches + 6 {
		ids = append(ids, fmt.Sprintf("x%d", i))
	}
	return ids
}

// TestListAgreementsSubMchIDs pins the allowed set of sub-merchants (a
// caller's): an IN set, intersected with sub_mchid, paged like any filter.
// seedList: m1 has A B C F G, m2 has D E H.
func TestListAgreementsSubMchIDs(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedList(t, db)
	tests := []struct {
		name string
		f    service.AgreementFilter
		want []string
	}{
		{"one", service.AgreementFilter{SubMchIDs: []string{"m2"}}, []string{"H", "E", "D"}},
		{"two", service.AgreementFilter{SubMchIDs: []string{"m2", "m1"}}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"two, one unknown", service.AgreementFilter{SubMchIDs: []string{"m9", "m2"}}, []string{"H", "E", "D"}},
		{"duplicates", service.AgreementFilter{SubMchIDs: []string{"m1", "m9", "m1"}}, []string{"G", "F", "C", "B", "A"}},
		{"none known", service.AgreementFilter{SubMchIDs: []string{"m8", "m9"}}, nil},
		{"many", service.AgreementFilter{SubMchIDs: manyMchIDs("m2")}, []string{"H", "E", "D"}},
		{"with state", service.AgreementFilter{State: service.AgreementSigned, SubMchIDs: []string{"m1", "m2"}}, []string{"G", "E", "C", "B"}},
		{"with openid", service.AgreementFilter{OpenID: "o2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "D", "C"}},
		{"sub_mchid in the set", service.AgreementFilter{SubMchID: "m2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "E", "D"}},
		{"sub_mchid outside the set", service.AgreementFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
		{"sub_mchid outside many", service.AgreementFilter{SubMchID: "m2", SubMchIDs: manyMchIDs("m1")}, nil},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, 3, 500} {
			got, pages := listAll(t, db, tt.f, n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, page size %d (-want +got):\n%s", tt.name, n, diff)
			}
			if want := max(1, (len(tt.want)+n-1)/n); pages != want {
				t.Errorf("%s, page size %d: %d pages, want %d", tt.name, n, pages, want)
			}
		}
	}
}

func TestListChargesSubMchIDs(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	tests := []struct {
		name string
		f    service.ChargeFilter
		want []string
	}{
		{"one", service.ChargeFilter{SubMchIDs: []string{"m2"}}, []string{"H", "E", "D"}},
		{"two", service.ChargeFilter{SubMchIDs: []string{"m2", "m1"}}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"two, one unknown", service.ChargeFilter{SubMchIDs: []string{"m9", "m2"}}, []string{"H", "E", "D"}},
		{"many", service.ChargeFilter{SubMchIDs: manyMchIDs("m2")}, []string{"H", "E", "D"}},
		{"with contract", service.ChargeFilter{ContractID: "c2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "D", "C"}},
		{"with range", service.ChargeFilter{CreatedFrom: chargeBase.Add(1), CreatedTo: chargeBase.Add(3e9),
			SubMchIDs: []string{"m1", "m2"}}, []string{"E", "D", "C", "B"}},
		{"sub_mchid in the set", service.ChargeFilter{SubMchID: "m1", SubMchIDs: []string{"m1", "m2"}}, []string{"G", "F", "C", "B", "A"}},
		{"sub_mchid outside the set", service.ChargeFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
	}
	for _, tt := range tests {
		for _, n := range []int{1, 2, 3, 500} {
			got, pages := listAllCharges(t, db, tt.f, n)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s, page size %d (-want +got):\n%s", tt.name, n, diff)
			}
			if want := max(1, (len(tt.want)+n-1)/n); pages != want {
				t.Errorf("%s, page size %d: %d pages, want %d", tt.name, n, pages, want)
			}
		}
	}
}

// TestListSubMchIDsPageToken pins that a page token is bound to the
// effective set: the same set in another order is the same filter; a
// token of a wider or narrower set, or of no set, is not.
func TestListSubMchIDsPageToken(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedList(t, db)
	seedCharges(t, db)
	both := []string{"m1", "m2"}
	_, next, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, SubMchIDs: both})
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}
	_, cnext, err := db.ListCharges(t.Context(), service.ChargeFilter{PageSize: 2, SubMchIDs: both})
	if err != nil || cnext == "" {
		t.Fatalf("first charge page: next %q, err %v", cnext, err)
	}
	for _, set := range [][]string{{"m2", "m1"}, {"m1", "m2", "m1"}} {
		if _, _, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, PageToken: next, SubMchIDs: set}); err != nil {
			t.Errorf("agreements, set %v: %v", set, err)
		}
		if _, _, err := db.ListCharges(t.Context(), service.ChargeFilter{PageSize: 2, PageToken: cnext, SubMchIDs: set}); err != nil {
			t.Errorf("charges, set %v: %v", set, err)
		}
	}
	for _, set := range [][]string{nil, {"m1"}, {"m1", "m2", "m3"}, {"m1", "m3"}} {
		_, _, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, PageToken: next, SubMchIDs: set})
		if !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("agreements, set %v: err = %v, want ErrInvalidPageToken", set, err)
		}
		_, _, err = db.ListCharges(t.Context(), service.ChargeFilter{PageSize: 2, PageToken: cnext, SubMchIDs: set})
		if !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("charges, set %v: err = %v, want ErrInvalidPageToken", set, err)
		}
	}
	// One allowed sub-merchant is the sub_mchid filter: the same rows, so
	// the same token.
	_, one, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, SubMchIDs: []string{"m1"}})
	if err != nil || one == "" {
		t.Fatalf("first page of m1: next %q, err %v", one, err)
	}
	if _, _, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, PageToken: one, SubMchID: "m1"}); err != nil {
		t.Errorf("token of {m1} under sub_mchid m1: %v", err)
	}
}
