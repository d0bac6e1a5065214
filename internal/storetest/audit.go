package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// auditEntry is the i-th entry of the audit tests: by key keyID on
// resource, i seconds after base.
func auditEntry(i int, keyID, resource string) service.AuditEntry {
	return service.AuditEntry{Time: base.Add(time.Duration(i) * time.Second), KeyID: keyID, KeyName: "n-" + keyID,
		Peer: "127.0.0.1:5000", Method: "CreateCharge", Resource: resource, Outcome: service.AuditOK}
}

// listAudit reads every page f selects.
func listAudit(t *testing.T, s service.Store, f service.AuditFilter) []service.AuditEntry {
	t.Helper()
	var out []service.AuditEntry
	for pages := 1; ; pages++ {
		es, next, err := s.ListAuditEntries(t.Context(), f)
		if err != nil {
			t.Fatalf("ListAuditEntries(%+v): %v", f, err)
		}
		if len(es) > f.PageSize {
			t.Fatalf("ListAuditEntries: %d entries, want at most %d", len(es), f.PageSize)
		}
		out = append(out, es...)
		if f.PageToken = next; next == "" || pages > 100 {
			return out
		}
	}
}

// withIDs copies the ids of got to want, index by index, failing the test
// unless they are set and fall from entry to entry: got lists entries
// recorded in time order, newest first.
func withIDs(t *testing.T, want, got []service.AuditEntry) []service.AuditEntry {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	seen := map[int64]bool{}
	out := append([]service.AuditEntry(nil), want...)
	for i := range got {
		if got[i].ID == 0 || seen[got[i].ID] {
			t.Errorf("entry %d: id %d, want a new one", i, got[i].ID)
		}
		if i > 0 && got[i].ID >= got[i-1].ID {
			t.Errorf("entry %d: id %d after id %d, want falling ids, newest first", i, got[i].ID, got[i-1].ID)
		}
		seen[got[i].ID] = true
		out[i].ID = got[i].ID
	}
	return out
}

func testAuditEntries(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	rows := []struct{ key, resource string }{
		{"k1", "charges/T1"}, {"k2", "charges/T1"}, {"k1", "agreements/A1"}, {"", "charges/T2"}, {"k1", "charges/T1"},
	}
	inTx(t, s, func(tx service.Tx) error {
		for i, r := range rows {
			if err := tx.InsertAuditEntry(ctx, auditEntry(i, r.key, r.resource)); err != nil {
				return err
			}
		}
		return nil
	})
	var newest []service.AuditEntry
	for i := len(rows) - 1; i >= 0; i-- {
		newest = append(newest, auditEntry(i, rows[i].key, rows[i].resource))
	}
	for _, n := range []int{1, 2, 500} {
		got := listAudit(t, s, service.AuditFilter{PageSize: n})
		if diff := cmp.Diff(withIDs(t, newest, got), got); diff != "" {
			t.Errorf("page size %d, newest first (-want +got):\n%s", n, diff)
		}
		for _, e := range got {
			checkUTC(t, "audit entry", map[string]time.Time{"Time": e.Time})
		}
	}
	var t1k1 []service.AuditEntry
	for _, e := range newest {
		if e.Resource == "charges/T1" && e.KeyID == "k1" {
			t1k1 = append(t1k1, e)
		}
	}
	got := listAudit(t, s, service.AuditFilter{Resource: "charges/T1", KeyID: "k1", PageSize: 1})
	if diff := cmp.Diff(withIDs(t, t1k1, got), got); diff != "" {
		t.Errorf("charges/T1 by k1 (-want +got):\n%s", diff)
	}
	_, next, err := s.ListAuditEntries(ctx, service.AuditFilter{PageSize: 1})
	if err != nil || next == "" {
		t.Fatalf("ListAuditEntries: next %q, err %v; want a next page", next, err)
	}
	for _, f := range []service.AuditFilter{
		{KeyID: "k1", PageSize: 1, PageToken: next},
		{Resource: "charges/T1", PageSize: 1, PageToken: next},
		{PageSize: 1, PageToken: "!!!"},
	} {
		_, _, err := s.ListAuditEntries(ctx, f)
		checkErr(t, "ListAuditEntries with a token not issued for its filter", err, service.ErrInvalidPageToken)
	}
}

func testRecordAuditEntry(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	refused := service.AuditEntry{Time: base.Add(time.Minute), Peer: "10.0.0.1:1", Method: "GetCharge",
		Resource: "charges/T9", Outcome: "UNAUTHENTICATED"}
	failed := make(chan error, 1)
	if err := s.RecordAuditEntry(ctx, refused, func(err error) { failed <- err }); err != nil {
		t.Fatalf("RecordAuditEntry: %v", err)
	}
	var got []service.AuditEntry
	eventually(t, "the recorded entry is listed", func() (bool, error) {
		es, _, err := s.ListAuditEntries(ctx, service.AuditFilter{PageSize: 10})
		got = es
		return len(es) > 0, err
	})
	if diff := cmp.Diff(withIDs(t, []service.AuditEntry{refused}, got), got); diff != "" {
		t.Errorf("recorded entry (-want +got):\n%s", diff)
	}
	select {
	case err := <-failed:
		t.Errorf("RecordAuditEntry reported a failure: %v", err)
	default:
	}
}
