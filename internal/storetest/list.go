package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// pager lists one page of pageSize after token: the keys of its rows and
// the next page's token.
type pager func(pageSize int, token string) (keys []string, next string, err error)

// listAll pages through p with page size n and returns the keys in order
// and the number of pages.
func listAll(t *testing.T, what string, p pager, n int) (keys []string, pages int) {
	t.Helper()
	token := ""
	for {
		page, next, err := p(n, token)
		if err != nil {
			t.Fatalf("%s, page size %d, page %d: %v", what, n, pages+1, err)
		}
		if len(page) > n {
			t.Fatalf("%s: page of %d rows, want at most %d", what, len(page), n)
		}
		pages++
		keys = append(keys, page...)
		if next == "" {
			return keys, pages
		}
		if pages > 100 {
			t.Fatalf("%s, page size %d: more than 100 pages", what, n)
		}
		token = next
	}
}

// checkList fails the test unless p lists exactly the rows want, newest
// first by their create times in created (rows created at the same time
// in any order, but in the same order on every page size), and each page
// size takes the pages it needs and no more.
func checkList(t *testing.T, what string, p pager, created map[string]time.Time, want []string) {
	t.Helper()
	var first []string
	for _, n := range []int{500, 1, 2, 3} {
		got, pages := listAll(t, what, p, n)
		if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
			t.Errorf("%s, page size %d: rows (-want +got):\n%s", what, n, diff)
			continue
		}
		for i := 1; i < len(got); i++ {
			if created[got[i]].After(created[got[i-1]]) {
				t.Errorf("%s, page size %d: %s (created %v) after %s (created %v), want newest first",
					what, n, got[i], created[got[i]], got[i-1], created[got[i-1]])
			}
		}
		if first == nil {
			first = got
		} else if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("%s: page size %d lists in another order than one page (-one page +paged):\n%s", what, n, diff)
		}
		if want := max(1, (len(want)+n-1)/n); pages != want {
			t.Errorf("%s, page size %d: %d pages, want %d", what, n, pages, want)
		}
	}
}

// sorted returns a sorted copy of keys; nil for none.
func sorted(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	return slices.Sorted(slices.Values(keys))
}

// listRow is one record of the list tests: its key, its filter fields and
// its create time as an offset from base. B, C and D share one create
// time; G and H are a nanosecond apart. The newest first order is
// H G F E {B C D} A.
type listRow struct {
	key, contract, occ, openid string
	plan                       int64
	mch                        string
	at                         time.Duration
}

var listRows = []listRow{
	{"A", "c1", "k1", "o1", 1, "m1", 0},
	{"B", "c1", "k2", "o1", 1, "m1", time.Second},
	{"C", "c2", "k2", "o2", 2, "m1", time.Second},
	{"D", "c2", "k1", "o2", 1, "m2", time.Second},
	{"E", "c1", "k1", "o1", 2, "m2", 2 * time.Second},
	{"F", "c3", "k3", "o3", 1, "m1", 3 * time.Second},
	{"G", "c1", "k2", "o1", 1, "m1", 3*time.Second + time.Microsecond},
	{"H", "c2", "k1", "o2", 2, "m2", 3*time.Second + time.Microsecond + 1},
}

// listCreated is the create time of each of listRows.
func listCreated() map[string]time.Time {
	m := map[string]time.Time{}
	for _, r := range listRows {
		m[r.key] = base.Add(r.at)
	}
	return m
}

// The states of listRows, by key, for each kind of record.
var (
	listAgreementStates = map[string]service.AgreementState{"A": service.AgreementPending, "B": service.AgreementSigned,
		"C": service.AgreementSigned, "D": service.AgreementTerminated, "E": service.AgreementSigned,
		"F": service.AgreementExpired, "G": service.AgreementSigned, "H": service.AgreementPending}
	listChargeStates = map[string]service.ChargeState{"A": service.ChargePending, "B": service.ChargeSucceeded,
		"C": service.ChargeSucceeded, "D": service.ChargeFailed, "E": service.ChargeProcessing,
		"F": service.ChargeClosed, "G": service.ChargeSucceeded, "H": service.ChargePending}
	listRefundStates = map[string]service.RefundState{"A": service.RefundPending, "B": service.RefundSucceeded,
		"C": service.RefundSucceeded, "D": service.RefundFailed, "E": service.RefundProcessing,
		"F": service.RefundClosed, "G": service.RefundSucceeded, "H": service.RefundPending}
)

// seedLists creates an agreement, a charge and a refund for each of
// listRows, in key order. A refund's charge is the row's contract.
func seedLists(t *testing.T, s service.Store) {
	t.Helper()
	inTx(t, s, func(tx service.Tx) error {
		for _, r := range listRows {
			at := base.Add(r.at).In(shanghai)
			a := FullAgreement(r.key, "", at)
			a.OpenID, a.PlanID, a.State, a.SubMchID = r.openid, r.plan, listAgreementStates[r.key], r.mch
			c := FullCharge(r.key, "", at)
			c.ContractID, c.OutContractCode, c.OpenID, c.State, c.SubMchID = r.contract, r.occ, r.openid, listChargeStates[r.key], r.mch
			f := FullRefund(r.key, "", at)
			f.OutTradeNo, f.State, f.SubMchID = r.contract, listRefundStates[r.key], r.mch
			if err := tx.CreateAgreement(t.Context(), a); err != nil {
				return err
			}
			if err := tx.CreateCharge(t.Context(), c); err != nil {
				return err
			}
			if err := tx.CreateRefund(t.Context(), f); err != nil {
				return err
			}
		}
		return nil
	})
}

// agreementPager pages ListAgreements of r under f.
func agreementPager(t *testing.T, r service.AgreementReader, f service.AgreementFilter) pager {
	return func(n int, token string) ([]string, string, error) {
		f.PageSize, f.PageToken = n, token
		as, next, err := r.ListAgreements(t.Context(), f)
		var keys []string
		for _, a := range as {
			keys = append(keys, a.OutContractCode)
		}
		return keys, next, err
	}
}

// chargePager pages ListCharges of r under f.
func chargePager(t *testing.T, r service.ChargeReader, f service.ChargeFilter) pager {
	return func(n int, token string) ([]string, string, error) {
		f.PageSize, f.PageToken = n, token
		cs, next, err := r.ListCharges(t.Context(), f)
		var keys []string
		for _, c := range cs {
			keys = append(keys, c.OutTradeNo)
		}
		return keys, next, err
	}
}

// refundPager pages ListRefunds of r under f.
func refundPager(t *testing.T, r service.RefundReader, f service.RefundFilter) pager {
	return func(n int, token string) ([]string, string, error) {
		f.PageSize, f.PageToken = n, token
		rs, next, err := r.ListRefunds(t.Context(), f)
		return refundNos(rs), next, err
	}
}

// manyMchIDs is extra and twenty sub-merchants without records.
func manyMchIDs(extra ...string) []string {
	ids := slices.Clone(extra)
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("x%d", i))
	}
	return ids
}

var all = []string{"H", "G", "F", "E", "D", "C", "B", "A"}

func testListAgreements(t *testing.T, open Opener) {
	s := open(t)
	seedLists(t, s)
	created := listCreated()
	tests := []struct {
		name string
		f    service.AgreementFilter
		want []string
	}{
		{"all", service.AgreementFilter{}, all},
		{"openid", service.AgreementFilter{OpenID: "o1"}, []string{"G", "E", "B", "A"}},
		{"plan", service.AgreementFilter{PlanID: 2}, []string{"H", "E", "C"}},
		{"state", service.AgreementFilter{State: service.AgreementSigned}, []string{"G", "E", "C", "B"}},
		{"sub_mchid", service.AgreementFilter{SubMchID: "m2"}, []string{"H", "E", "D"}},
		{"all filters", service.AgreementFilter{OpenID: "o1", PlanID: 1, State: service.AgreementSigned, SubMchID: "m1"}, []string{"G", "B"}},
		{"none match", service.AgreementFilter{OpenID: "nobody"}, nil},
		{"sub_mchids, one", service.AgreementFilter{SubMchIDs: []string{"m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids, two", service.AgreementFilter{SubMchIDs: []string{"m2", "m1"}}, all},
		{"sub_mchids, one unknown", service.AgreementFilter{SubMchIDs: []string{"m9", "m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids, duplicates", service.AgreementFilter{SubMchIDs: []string{"m1", "m9", "m1"}}, []string{"G", "F", "C", "B", "A"}},
		{"sub_mchids, none known", service.AgreementFilter{SubMchIDs: []string{"m8", "m9"}}, nil},
		{"sub_mchids, many", service.AgreementFilter{SubMchIDs: manyMchIDs("m2")}, []string{"H", "E", "D"}},
		{"sub_mchids and state", service.AgreementFilter{State: service.AgreementSigned, SubMchIDs: []string{"m1", "m2"}}, []string{"G", "E", "C", "B"}},
		{"sub_mchid in the set", service.AgreementFilter{SubMchID: "m2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids and openid", service.AgreementFilter{OpenID: "o2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "D", "C"}},
		{"sub_mchid outside the set", service.AgreementFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
		{"sub_mchid outside many", service.AgreementFilter{SubMchID: "m2", SubMchIDs: manyMchIDs("m1")}, nil},
	}
	for _, tt := range tests {
		checkList(t, "agreements, "+tt.name, agreementPager(t, s, tt.f), created, tt.want)
	}
	// The rows listed are the records, every field.
	as, _, err := s.ListAgreements(t.Context(), service.AgreementFilter{PageSize: 500})
	if err != nil {
		t.Fatalf("ListAgreements: %v", err)
	}
	for _, a := range as {
		want, err := s.AgreementByOutContractCode(t.Context(), a.OutContractCode)
		if err != nil {
			t.Fatalf("AgreementByOutContractCode(%s): %v", a.OutContractCode, err)
		}
		if diff := cmp.Diff(want, a); diff != "" {
			t.Errorf("listed %s (-read +listed):\n%s", a.OutContractCode, diff)
		}
	}
}

func testListCharges(t *testing.T, open Opener) {
	s := open(t)
	seedLists(t, s)
	created := listCreated()
	at := func(d time.Duration) time.Time { return base.Add(d) }
	tests := []struct {
		name string
		f    service.ChargeFilter
		want []string
	}{
		{"all", service.ChargeFilter{}, all},
		{"contract id", service.ChargeFilter{ContractID: "c1"}, []string{"G", "E", "B", "A"}},
		{"out_contract_code", service.ChargeFilter{OutContractCode: "k1"}, []string{"H", "E", "D", "A"}},
		{"openid", service.ChargeFilter{OpenID: "o2"}, []string{"H", "D", "C"}},
		{"state", service.ChargeFilter{State: service.ChargeSucceeded}, []string{"G", "C", "B"}},
		{"sub_mchid", service.ChargeFilter{SubMchID: "m2"}, []string{"H", "E", "D"}},
		// [from, to): from is inclusive, to exclusive, to the nanosecond.
		{"from, inclusive", service.ChargeFilter{CreatedFrom: at(time.Second)}, []string{"H", "G", "F", "E", "D", "C", "B"}},
		{"from, 1ns after", service.ChargeFilter{CreatedFrom: at(time.Second + 1)}, []string{"H", "G", "F", "E"}},
		{"from, another zone", service.ChargeFilter{CreatedFrom: at(3*time.Second + time.Microsecond).In(shanghai)}, []string{"H", "G"}},
		{"from, between G and H", service.ChargeFilter{CreatedFrom: at(3*time.Second + time.Microsecond + 1)}, []string{"H"}},
		{"to, exclusive", service.ChargeFilter{CreatedTo: at(time.Second)}, []string{"A"}},
		{"to, 1ns after", service.ChargeFilter{CreatedTo: at(time.Second + 1)}, []string{"D", "C", "B", "A"}},
		{"to, between G and H", service.ChargeFilter{CreatedTo: at(3*time.Second + time.Microsecond + 1)}, []string{"G", "F", "E", "D", "C", "B", "A"}},
		{"to, excludes G", service.ChargeFilter{CreatedTo: at(3*time.Second + time.Microsecond)}, []string{"F", "E", "D", "C", "B", "A"}},
		// Bounds outside the times a store can hold still bound.
		{"from before 1677", service.ChargeFilter{CreatedFrom: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, all},
		{"to after 2262", service.ChargeFilter{CreatedTo: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, all},
		{"from after 2262", service.ChargeFilter{CreatedFrom: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"to before 1677", service.ChargeFilter{CreatedTo: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"from and to", service.ChargeFilter{CreatedFrom: at(time.Second), CreatedTo: at(3 * time.Second)}, []string{"E", "D", "C", "B"}},
		{"from equals to", service.ChargeFilter{CreatedFrom: at(time.Second), CreatedTo: at(time.Second)}, nil},
		{"from after to", service.ChargeFilter{CreatedFrom: at(2 * time.Second), CreatedTo: at(time.Second)}, nil},
		{"openid and out_contract_code", service.ChargeFilter{OpenID: "o1", OutContractCode: "k2"}, []string{"G", "B"}},
		{"all filters", service.ChargeFilter{ContractID: "c1", OutContractCode: "k2", OpenID: "o1", State: service.ChargeSucceeded,
			SubMchID: "m1", CreatedFrom: at(time.Second), CreatedTo: at(4 * time.Second)}, []string{"G", "B"}},
		{"none match", service.ChargeFilter{ContractID: "nope"}, nil},
		{"sub_mchids, one", service.ChargeFilter{SubMchIDs: []string{"m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids, two", service.ChargeFilter{SubMchIDs: []string{"m2", "m1"}}, all},
		{"sub_mchids, one unknown", service.ChargeFilter{SubMchIDs: []string{"m9", "m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids, many", service.ChargeFilter{SubMchIDs: manyMchIDs("m2")}, []string{"H", "E", "D"}},
		{"sub_mchids and contract", service.ChargeFilter{ContractID: "c2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "D", "C"}},
		{"sub_mchids and range", service.ChargeFilter{CreatedFrom: at(1), CreatedTo: at(3 * time.Second),
			SubMchIDs: []string{"m1", "m2"}}, []string{"E", "D", "C", "B"}},
		{"sub_mchid in the set", service.ChargeFilter{SubMchID: "m1", SubMchIDs: []string{"m1", "m2"}}, []string{"G", "F", "C", "B", "A"}},
		{"sub_mchid outside the set", service.ChargeFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
	}
	for _, tt := range tests {
		checkList(t, "charges, "+tt.name, chargePager(t, s, tt.f), created, tt.want)
	}
	cs, _, err := s.ListCharges(t.Context(), service.ChargeFilter{PageSize: 500})
	if err != nil {
		t.Fatalf("ListCharges: %v", err)
	}
	for _, c := range cs {
		want, err := s.ChargeByOutTradeNo(t.Context(), c.OutTradeNo)
		if err != nil {
			t.Fatalf("ChargeByOutTradeNo(%s): %v", c.OutTradeNo, err)
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("listed %s (-read +listed):\n%s", c.OutTradeNo, diff)
		}
	}
}

func testListRefunds(t *testing.T, open Opener) {
	s := open(t)
	seedLists(t, s)
	created := listCreated()
	tests := []struct {
		name string
		f    service.RefundFilter
		want []string
	}{
		{"all", service.RefundFilter{}, all},
		{"out_trade_no", service.RefundFilter{OutTradeNo: "c1"}, []string{"G", "E", "B", "A"}},
		{"state", service.RefundFilter{State: service.RefundSucceeded}, []string{"G", "C", "B"}},
		{"sub_mchid", service.RefundFilter{SubMchID: "m2"}, []string{"H", "E", "D"}},
		{"all filters", service.RefundFilter{OutTradeNo: "c1", State: service.RefundSucceeded, SubMchID: "m1"}, []string{"G", "B"}},
		{"out_trade_no of another sub-merchant", service.RefundFilter{OutTradeNo: "c3", SubMchID: "m2"}, nil},
		{"none match", service.RefundFilter{OutTradeNo: "nope"}, nil},
		{"sub_mchids, one", service.RefundFilter{SubMchIDs: []string{"m2"}}, []string{"H", "E", "D"}},
		{"sub_mchids, two", service.RefundFilter{SubMchIDs: []string{"m2", "m1"}}, all},
		{"sub_mchids, many", service.RefundFilter{SubMchIDs: manyMchIDs("m1")}, []string{"G", "F", "C", "B", "A"}},
		{"sub_mchids and out_trade_no", service.RefundFilter{OutTradeNo: "c2", SubMchIDs: []string{"m1", "m2"}}, []string{"H", "D", "C"}},
		{"sub_mchid in the set", service.RefundFilter{SubMchID: "m1", SubMchIDs: []string{"m1", "m2"}}, []string{"G", "F", "C", "B", "A"}},
		{"sub_mchids, none known", service.RefundFilter{SubMchIDs: []string{"m8", "m9"}}, nil},
		{"sub_mchids and out_trade_no of another", service.RefundFilter{OutTradeNo: "c3", SubMchIDs: []string{"m2", "m9"}}, nil},
		{"sub_mchid outside the set", service.RefundFilter{SubMchID: "m2", SubMchIDs: []string{"m1"}}, nil},
		{"sub_mchid outside many", service.RefundFilter{SubMchID: "m2", SubMchIDs: manyMchIDs("m1")}, nil},
	}
	for _, tt := range tests {
		checkList(t, "refunds, "+tt.name, refundPager(t, s, tt.f), created, tt.want)
	}
	rs, _, err := s.ListRefunds(t.Context(), service.RefundFilter{PageSize: 500})
	if err != nil {
		t.Fatalf("ListRefunds: %v", err)
	}
	for _, r := range rs {
		want, err := s.RefundByOutRefundNo(t.Context(), r.OutRefundNo)
		if err != nil {
			t.Fatalf("RefundByOutRefundNo(%s): %v", r.OutRefundNo, err)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("listed %s (-read +listed):\n%s", r.OutRefundNo, diff)
		}
	}
}

// testListInTx lists inside a transaction, which sees its own writes.
func testListInTx(t *testing.T, open Opener) {
	s := open(t)
	seedLists(t, s)
	created := listCreated()
	created["I"] = base.Add(time.Hour)
	inTx(t, s, func(tx service.Tx) error {
		a := FullAgreement("I", "", created["I"])
		a.State = service.AgreementPending
		c := FullCharge("I", "", created["I"])
		c.State = service.ChargePending
		r := FullRefund("I", "", created["I"])
		r.State = service.RefundPending
		if err := tx.CreateAgreement(t.Context(), a); err != nil {
			return err
		}
		if err := tx.CreateCharge(t.Context(), c); err != nil {
			return err
		}
		if err := tx.CreateRefund(t.Context(), r); err != nil {
			return err
		}
		checkList(t, "agreements in a tx", agreementPager(t, tx, service.AgreementFilter{State: service.AgreementPending}),
			created, []string{"I", "H", "A"})
		checkList(t, "charges in a tx", chargePager(t, tx, service.ChargeFilter{State: service.ChargePending}),
			created, []string{"I", "H", "A"})
		checkList(t, "refunds in a tx", refundPager(t, tx, service.RefundFilter{State: service.RefundPending}),
			created, []string{"I", "H", "A"})
		return nil
	})
}

func testPageTokens(t *testing.T, open Opener) {
	s := open(t)
	seedLists(t, s)
	ctx := t.Context()
	both := []string{"m1", "m2"}
	type list func(token string, state bool, set []string) ([]string, string, error)
	lists := map[string]list{
		"agreements": func(token string, state bool, set []string) ([]string, string, error) {
			f := service.AgreementFilter{PageSize: 2, SubMchIDs: set}
			if state {
				f.State = service.AgreementSigned
			}
			return agreementPager(t, s, f)(2, token)
		},
		"charges": func(token string, state bool, set []string) ([]string, string, error) {
			f := service.ChargeFilter{PageSize: 2, SubMchIDs: set}
			if state {
				f.State = service.ChargeSucceeded
			}
			return chargePager(t, s, f)(2, token)
		},
		"refunds": func(token string, state bool, set []string) ([]string, string, error) {
			f := service.RefundFilter{PageSize: 2, SubMchIDs: set}
			if state {
				f.State = service.RefundSucceeded
			}
			return refundPager(t, s, f)(2, token)
		},
	}
	for name, l := range lists {
		first, next, err := l("", true, both)
		if err != nil || next == "" {
			t.Fatalf("%s: first page: %v, next %q, err %v; want a next page", name, first, next, err)
		}
		second, _, err := l(next, true, both)
		if err != nil {
			t.Fatalf("%s: second page: %v", name, err)
		}
		if len(second) == 0 || slices.ContainsFunc(second, func(k string) bool { return slices.Contains(first, k) }) {
			t.Errorf("%s: second page %v after first page %v, want other rows", name, second, first)
		}
		// The same set in another order, or with a duplicate, is the same
		// filter: the token continues the listing.
		for _, set := range [][]string{{"m2", "m1"}, {"m1", "m2", "m1"}} {
			got, _, err := l(next, true, set)
			if err != nil {
				t.Errorf("%s: token under set %v: %v, want the second page", name, set, err)
			} else if diff := cmp.Diff(second, got); diff != "" {
				t.Errorf("%s: token under set %v (-second page +got):\n%s", name, set, diff)
			}
		}
		for _, tt := range []struct {
			name  string
			token string
			state bool
			set   []string
		}{
			{"not base64", "!!!", true, both},
			{"garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true, both},
			{"truncated", next[:len(next)/2], true, both},
			{"extended", next + "AAAA", true, both},
			{"state dropped", next, false, both},
			{"set dropped", next, true, nil},
			{"narrower set", next, true, []string{"m1"}},
			{"wider set", next, true, []string{"m1", "m2", "m3"}},
			{"other set", next, true, []string{"m1", "m3"}},
		} {
			_, _, err := l(tt.token, tt.state, tt.set)
			checkErr(t, fmt.Sprintf("%s, %s", name, tt.name), err, service.ErrInvalidPageToken)
		}
	}
	_, next, err := s.ListAuditEntries(ctx, service.AuditFilter{PageSize: 1})
	if err != nil {
		t.Fatalf("ListAuditEntries: %v", err)
	}
	_, _, err = s.ListAuditEntries(ctx, service.AuditFilter{PageSize: 1, PageToken: "!!!" + next})
	checkErr(t, "audit entries, not base64", err, service.ErrInvalidPageToken)
}

// testListPageSize: a page size below 1 is refused.
func testListPageSize(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	for _, n := range []int{0, -1} {
		if _, _, err := s.ListAgreements(ctx, service.AgreementFilter{PageSize: n}); err == nil {
			t.Errorf("ListAgreements with page size %d: err = nil, want an error", n)
		}
		if _, _, err := s.ListCharges(ctx, service.ChargeFilter{PageSize: n}); err == nil {
			t.Errorf("ListCharges with page size %d: err = nil, want an error", n)
		}
		if _, _, err := s.ListRefunds(ctx, service.RefundFilter{PageSize: n}); err == nil {
			t.Errorf("ListRefunds with page size %d: err = nil, want an error", n)
		}
	}
}

// testPageTokenFilters: a page token continues only the listing it was
// issued for: under any other filter, or in another list, it is refused;
// the same filter written otherwise (a time in another zone, one allowed
// sub-merchant as the sub_mchid filter) is the same listing.
func testPageTokenFilters(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	seedLists(t, s)
	from := base.Add(time.Second)
	signed := service.ChargeFilter{PageSize: 2, State: service.ChargeSucceeded, CreatedFrom: from}
	refundF := service.RefundFilter{PageSize: 1, OutTradeNo: "c1", SubMchIDs: []string{"m1", "m2"}}
	agreementF := service.AgreementFilter{PageSize: 2, State: service.AgreementSigned}
	_, chargeToken, err1 := s.ListCharges(ctx, signed)
	_, refundToken, err2 := s.ListRefunds(ctx, refundF)
	_, agreementToken, err3 := s.ListAgreements(ctx, agreementF)
	if err := errors.Join(err1, err2, err3); err != nil || chargeToken == "" || refundToken == "" || agreementToken == "" {
		t.Fatalf("first pages: tokens %q, %q, %q, err %v; want three tokens", chargeToken, refundToken, agreementToken, err)
	}
	charge := func(edit func(*service.ChargeFilter)) service.ChargeFilter {
		f := signed
		edit(&f)
		return f
	}
	refund := func(edit func(*service.RefundFilter)) service.RefundFilter {
		f := refundF
		edit(&f)
		return f
	}
	agreement := func(edit func(*service.AgreementFilter)) service.AgreementFilter {
		f := agreementF
		edit(&f)
		return f
	}
	list := map[string]func(token string) error{
		"charges, other state": func(tk string) error {
			return listCharges(s, charge(func(f *service.ChargeFilter) { f.State, f.PageToken = service.ChargePending, tk }))
		},
		"charges, state moved to another field": func(tk string) error {
			return listCharges(s, charge(func(f *service.ChargeFilter) { f.State, f.OpenID, f.PageToken = "", string(f.State), tk }))
		},
		"charges, from 1ns later": func(tk string) error {
			return listCharges(s, charge(func(f *service.ChargeFilter) { f.CreatedFrom, f.PageToken = from.Add(1), tk }))
		},
		"charges, from dropped": func(tk string) error {
			return listCharges(s, charge(func(f *service.ChargeFilter) { f.CreatedFrom, f.PageToken = time.Time{}, tk }))
		},
		"charges, to added": func(tk string) error {
			return listCharges(s, charge(func(f *service.ChargeFilter) { f.CreatedTo, f.PageToken = from.Add(time.Hour), tk }))
		},
		"charges, filter dropped": func(tk string) error {
			return listCharges(s, service.ChargeFilter{PageSize: 2, PageToken: tk})
		},
		"refunds, other out_trade_no": func(tk string) error {
			return listRefunds(s, refund(func(f *service.RefundFilter) { f.OutTradeNo, f.PageToken = "c2", tk }))
		},
		"refunds, out_trade_no moved to sub_mchid": func(tk string) error {
			return listRefunds(s, refund(func(f *service.RefundFilter) { f.OutTradeNo, f.SubMchID, f.PageToken = "", f.OutTradeNo, tk }))
		},
		"refunds, state added": func(tk string) error {
			return listRefunds(s, refund(func(f *service.RefundFilter) { f.State, f.PageToken = service.RefundPending, tk }))
		},
		"refunds, filter dropped": func(tk string) error {
			return listRefunds(s, service.RefundFilter{PageSize: 1, PageToken: tk})
		},
		"agreements, other state": func(tk string) error {
			return listAgreements(s, agreement(func(f *service.AgreementFilter) { f.State, f.PageToken = service.AgreementPending, tk }))
		},
		"agreements, filter dropped": func(tk string) error {
			return listAgreements(s, service.AgreementFilter{PageSize: 2, PageToken: tk})
		},
	}
	tokens := map[string]string{"charges": chargeToken, "refunds": refundToken, "agreements": agreementToken}
	for name, l := range list {
		own := tokens[strings.SplitN(name, ",", 2)[0]]
		checkErr(t, name, l(own), service.ErrInvalidPageToken)
	}
	// Each list's token in another list.
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"a charge token in ListRefunds", listRefunds(s, service.RefundFilter{PageSize: 1, PageToken: chargeToken})},
		{"a charge token in ListAgreements", listAgreements(s, service.AgreementFilter{PageSize: 2, PageToken: chargeToken})},
		{"a refund token in ListCharges", listCharges(s, service.ChargeFilter{PageSize: 1, PageToken: refundToken})},
		{"a refund token in ListAgreements", listAgreements(s, service.AgreementFilter{PageSize: 1, PageToken: refundToken})},
		{"an agreement token in ListCharges", listCharges(s, service.ChargeFilter{PageSize: 2, PageToken: agreementToken})},
		{"an agreement token in ListRefunds", listRefunds(s, service.RefundFilter{PageSize: 2, PageToken: agreementToken})},
		{"agreements, padded base64", listAgreements(s, agreement(func(f *service.AgreementFilter) { f.PageToken = agreementToken + "==" }))},
	} {
		checkErr(t, tt.name, tt.err, service.ErrInvalidPageToken)
	}
	// The same filter written otherwise continues the listing.
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"charges, from in another zone", listCharges(s, charge(func(f *service.ChargeFilter) {
			f.CreatedFrom, f.PageToken = from.In(shanghai), chargeToken
		}))},
		{"refunds, the set reordered with a duplicate", listRefunds(s, refund(func(f *service.RefundFilter) {
			f.SubMchIDs, f.PageToken = []string{"m2", "m1", "m2"}, refundToken
		}))},
	} {
		checkErr(t, tt.name, tt.err, nil)
	}
	_, one, err := s.ListAgreements(ctx, service.AgreementFilter{PageSize: 2, SubMchIDs: []string{"m1"}})
	if err != nil || one == "" {
		t.Fatalf("ListAgreements of {m1}: next %q, err %v; want a next page", one, err)
	}
	err = listAgreements(s, service.AgreementFilter{PageSize: 2, PageToken: one, SubMchID: "m1"})
	checkErr(t, "the token of sub_mchids {m1} under sub_mchid m1", err, nil)
}

// listAgreements, listCharges and listRefunds list one page of f and
// return the error.
func listAgreements(s service.Store, f service.AgreementFilter) error {
	_, _, err := s.ListAgreements(context.Background(), f)
	return err
}

func listCharges(s service.Store, f service.ChargeFilter) error {
	_, _, err := s.ListCharges(context.Background(), f)
	return err
}

func listRefunds(s service.Store, f service.RefundFilter) error {
	_, _, err := s.ListRefunds(context.Background(), f)
	return err
}
