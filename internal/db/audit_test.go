package db

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
	inTx(t, db, func(tx service.Tx) error {
		for i, r := range []struct{ key, resource string }{
			{"k1", "charges/T1"}, {"k2", "charges/T1"}, {"k1", "agreements/A1"}, {"", "charges/T2"}, {"k1", "charges/T1"},
		} {
			e := service.AuditEntry{Time: base.Add(time.Duration(i) * time.Second), KeyID: r.key, KeyName: "n-" + r.key,
				Peer: "127.0.0.1:5000", Method: "CreateCharge", Resource: r.resource, Outcome: service.AuditOK}
			if err := tx.InsertAuditEntry(ctx, e); err != nil {
				return err
			}
			e.ID = int64(i + 1)
			all = append([]service.AuditEntry{e}, all...)
		}
		return nil
	})
	// A refused call's entry is queued outside any transaction.
	refused := service.AuditEntry{Time: base.Add(time.Minute), Peer: "10.0.0.1:1", Method: "GetCharge",
		Resource: "charges/T9", Outcome: "UNAUTHENTICATED"}
	done := make(chan error, 1)
	if err := db.RecordAuditEntry(ctx, refused, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	inTx(t, db, func(service.Tx) error { return nil }) // a commit after the queued row
	refused.ID = 6
	all = append([]service.AuditEntry{refused}, all...)

	page := func(f service.AuditFilter) []service.AuditEntry {
		t.Helper()
		var out []service.AuditEntry
		for {
			es, next, err := db.ListAuditEntries(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, es...)
			if f.PageToken = next; next == "" {
				return out
			}
		}
	}
	if diff := cmp.Diff(all, page(service.AuditFilter{PageSize: 2})); diff != "" {
		t.Errorf("all entries (-want +got):\n%s", diff)
	}
	var t1k1 []service.AuditEntry
	for _, e := range all {
		if e.Resource == "charges/T1" && e.KeyID == "k1" {
			t1k1 = append(t1k1, e)
		}
	}
	if diff := cmp.Diff(t1k1, page(service.AuditFilter{Resource: "charges/T1", KeyID: "k1", PageSize: 1})); diff != "" {
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
