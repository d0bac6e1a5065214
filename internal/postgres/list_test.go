package postgres

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
	inTx(t, db, func(tx Tx) error {
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

// listAll pages through f with page size n and returns the codes in order.
func listAll(t *testing.T, r service.AgreementReader, f service.AgreementFilter, n int) (codes []string, pages int) {
	t.Helper()
	f.PageSize = n
	for {
		as, next, err := r.ListAgreements(t.Context(), f)
		if err != nil {
			t.Fatalf("ListAgreements(%+v): %v", f, err)
		}
		if len(as) > n {
			t.Fatalf("page of %d, want at most %d", len(as), n)
		}
		pages++
		for _, a := range as {
			codes = append(codes, a.OutContractCode)
		}
		if next == "" {
			return codes, pages
		}
		f.PageToken = next
	}
}

func TestListAgreementsFilters(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedList(t, db)
	tests := []struct {
		name string
		f    service.AgreementFilter
		want []string
	}{
		{"all", service.AgreementFilter{}, []string{"H", "G", "F", "E", "D", "C", "B", "A"}},
		{"openid", service.AgreementFilter{OpenID: "o1"}, []string{"G", "E", "B", "A"}},
		{"plan", service.AgreementFilter{PlanID: 2}, []string{"H", "E", "C"}},
		{"state", service.AgreementFilter{State: service.AgreementSigned}, []string{"G", "E", "C", "B"}},
		{"sub_mchid", service.AgreementFilter{SubMchID: "m2"}, []string{"H", "E", "D"}},
		{"all filters", service.AgreementFilter{OpenID: "o1", PlanID: 1, State: service.AgreementSigned, SubMchID: "m1"}, []string{"G", "B"}},
		{"none match", service.AgreementFilter{OpenID: "nobody"}, nil},
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

func TestListAgreementsInTx(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedList(t, db)
	inTx(t, db, func(tx Tx) error {
		got, _ := listAll(t, tx, service.AgreementFilter{State: service.AgreementPending}, 1)
		if diff := cmp.Diff([]string{"H", "A"}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestListAgreementsBadToken(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedList(t, db)
	_, next, err := db.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 2, State: service.AgreementSigned})
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	badVersion := append([]byte{9}, raw[1:]...)
	tests := []struct {
		name  string
		token string
		f     service.AgreementFilter
	}{
		{"not base64", "!!!", service.AgreementFilter{}},
		{"padded base64", next + "==", service.AgreementFilter{State: service.AgreementSigned}},
		{"too short", next[:10], service.AgreementFilter{State: service.AgreementSigned}},
		{"too long", next + "AAAA", service.AgreementFilter{State: service.AgreementSigned}},
		{"unknown version", base64.RawURLEncoding.EncodeToString(badVersion), service.AgreementFilter{State: service.AgreementSigned}},
		{"other filter", next, service.AgreementFilter{State: service.AgreementPending}},
		{"filter dropped", next, service.AgreementFilter{}},
	}
	for _, tt := range tests {
		tt.f.PageSize, tt.f.PageToken = 2, tt.token
		_, _, err := db.ListAgreements(t.Context(), tt.f)
		if !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", tt.name, err)
		}
	}
}
