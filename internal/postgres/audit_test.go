package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

func TestAuditEntries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var all []service.AuditEntry
	inTx(t, db, func(tx Tx) error {
		all = nil // fn may run again
		for i, r := range []struct{ key, resource string }{
			{"k1", "charges/T1"}, {"k2", "charges/T1"}, {"k1", "agreements/A1"}, {"", "charges/T2"}, {"k1", "charges/T1"},
		} {
			e := service.AuditEntry{Time: base.Add(time.Duration(i)*time.Second + 3), KeyID: r.key, KeyName: "n-" + r.key,
				Peer: "127.0.0.1:5000", Method: "CreateCharge", Resource: r.resource, Outcome: service.AuditOK}
			if err := tx.InsertAuditEntry(ctx, e); err != nil {
				return err
			}
			all = append([]service.AuditEntry{e}, all...)
		}
		return nil
	})
	// A refused call's entry is queued outside any transaction.
	refused := service.AuditEntry{Time: base.Add(time.Minute), Peer: "10.0.0.1:1", Method: "GetCharge",
		Resource: "charges/T9", Outcome: "UNAUTHENTICATED"}
	failed := make(chan error, 1)
	if err := db.RecordAuditEntry(ctx, refused, func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	flushAsync(t, db)
	select {
	case err := <-failed:
		t.Fatalf("RecordAuditEntry failed: %v", err)
	default:
	}
	all = append([]service.AuditEntry{refused}, all...)
	// The ids are the store's: read them back, check they fall as the
	// entries get older, and compare the rest.
	got := listAllAudit(t, db, service.AuditFilter{PageSize: 2})
	if len(got) != len(all) {
		t.Fatalf("%d entries, want %d", len(got), len(all))
	}
	for i := range got {
		if i > 0 && got[i].ID >= got[i-1].ID {
			t.Errorf("entry %d has id %d after id %d", i, got[i].ID, got[i-1].ID)
		}
		all[i].ID = got[i].ID
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Errorf("all entries (-want +got):\n%s", diff)
	}
	var t1k1 []service.AuditEntry
	for _, e := range all {
		if e.Resource == "charges/T1" && e.KeyID == "k1" {
			t1k1 = append(t1k1, e)
		}
	}
	if diff := cmp.Diff(t1k1, listAllAudit(t, db, service.AuditFilter{Resource: "charges/T1", KeyID: "k1", PageSize: 1})); diff != "" {
		t.Errorf("charges/T1 by k1 (-want +got):\n%s", diff)
	}
	_, next, err := db.ListAuditEntries(ctx, service.AuditFilter{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ListAuditEntries(ctx, service.AuditFilter{KeyID: "k1", PageSize: 1, PageToken: next}); !errors.Is(err, service.ErrInvalidPageToken) {
		t.Errorf("a token of another filter: %v", err)
	}
}

// listAllAudit reads every page f selects.
func listAllAudit(t *testing.T, db *DB, f service.AuditFilter) []service.AuditEntry {
	t.Helper()
	var out []service.AuditEntry
	for {
		es, next, err := db.ListAuditEntries(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
		if f.PageToken = next; next == "" {
			return out
		}
	}
}

// TestAuditEntryRolledBack: an entry inserted in a transaction that rolls
// back is not recorded.
func TestAuditEntryRolledBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertAuditEntry(ctx, service.AuditEntry{Time: time.Now(), Method: "CreateCharge", Outcome: service.AuditOK}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM audit_entries`); n != 0 {
		t.Fatalf("%d entries after a rollback", n)
	}
}
