package postgres

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

func TestAuditEntries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	var all []service.AuditEntry
	inTx(t, pg, func(tx Tx) error {
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
	if err := pg.RecordAuditEntry(ctx, refused, func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	flushAsync(t, pg)
	select {
	case err := <-failed:
		t.Fatalf("RecordAuditEntry failed: %v", err)
	default:
	}
	all = append([]service.AuditEntry{refused}, all...)
	// The ids are the store's: read them back, check they fall as the
	// entries get older, and compare the rest.
	got := listAllAudit(t, pg, service.AuditFilter{PageSize: 2})
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
	if diff := cmp.Diff(t1k1, listAllAudit(t, pg, service.AuditFilter{Resource: "charges/T1", KeyID: "k1", PageSize: 1})); diff != "" {
		t.Errorf("charges/T1 by k1 (-want +got):\n%s", diff)
	}
	_, next, err := pg.ListAuditEntries(ctx, service.AuditFilter{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pg.ListAuditEntries(ctx, service.AuditFilter{KeyID: "k1", PageSize: 1, PageToken: next}); !errors.Is(err, service.ErrInvalidPageToken) {
		t.Errorf("a token of another filter: %v", err)
	}
}

// listAllAudit reads every page f selects.
func listAllAudit(t *testing.T, pg *DB, f service.AuditFilter) []service.AuditEntry {
	t.Helper()
	var out []service.AuditEntry
	for {
		es, next, err := pg.ListAuditEntries(t.Context(), f)
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
	pg := openTestDB(t)
	boom := errors.New("boom")
	err := pg.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertAuditEntry(ctx, service.AuditEntry{Time: time.Now(), Method: "CreateCharge", Outcome: service.AuditOK}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if n := countRows(t, pg, `SELECT count(*) FROM audit_entries`); n != 0 {
		t.Fatalf("%d entries after a rollback", n)
	}
}

// TestAuditPageTokensAgreeWithSQLite: the same entries, ties of time
// included, page alike in both stores, and a token of one continues the
// listing on the other.
func TestAuditPageTokensAgreeWithSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "papayd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var es []service.AuditEntry
	for i, at := range []time.Duration{0, time.Second, time.Second, time.Second, 2 * time.Second, 3 * time.Second} {
		es = append(es, service.AuditEntry{Time: base.Add(at), KeyID: []string{"k1", "k2"}[i%2], Method: "GetCharge",
			Resource: "charges/T" + string(rune('A'+i)), Outcome: service.AuditOK})
	}
	inTx(t, pg, func(tx Tx) error {
		for _, e := range es {
			if err := tx.InsertAuditEntry(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err := lite.InTx(ctx, func(tx service.Tx) error {
		for _, e := range es {
			if err := tx.InsertAuditEntry(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []service.AuditFilter{{PageSize: 2}, {PageSize: 1, KeyID: "k2"}} {
		var pgAll, liteAll []service.AuditEntry
		pgToken, liteToken := "", ""
		for page := 0; ; page++ {
			pf, lf := f, f
			// Swap the tokens: each store continues the other's listing.
			pf.PageToken, lf.PageToken = liteToken, pgToken
			pes, pnext, err1 := pg.ListAuditEntries(ctx, pf)
			les, lnext, err2 := lite.ListAuditEntries(ctx, lf)
			if err1 != nil || err2 != nil {
				t.Fatalf("filter %+v page %d: %v, %v", f, page, err1, err2)
			}
			if pnext != lnext {
				t.Fatalf("filter %+v page %d: tokens %q (pg), %q (sqlite)", f, page, pnext, lnext)
			}
			pgAll, liteAll = append(pgAll, pes...), append(liteAll, les...)
			if pnext == "" {
				break
			}
			pgToken, liteToken = pnext, lnext
		}
		if diff := cmp.Diff(liteAll, pgAll); diff != "" {
			t.Errorf("filter %+v (-sqlite +pg):\n%s", f, diff)
		}
		if len(pgAll) == 0 {
			t.Errorf("filter %+v: no entries", f)
		}
	}
}

// TestAuditQueryPlans pins that the audit pages are read through the
// indexes meant for them (sequential scans disabled, as in TestQueryPlans).
func TestAuditQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := openTestDB(t)
	page := func(extra ...any) pgx.NamedArgs {
		args := pgx.NamedArgs{"after_time": int64(1 << 62), "after_id": int64(1 << 62), "limit": 10}
		for i := 0; i < len(extra); i += 2 {
			args[extra[i].(string)] = extra[i+1]
		}
		return args
	}
	tests := []struct {
		name, query, index string
		args               pgx.NamedArgs
	}{
		{"audit page", listAuditSQL + listAuditOrderSQL, "audit_entries_page", page()},
		{"audit page by resource", listAuditSQL + listAuditByResourceSQL + listAuditOrderSQL, "audit_entries_resource",
			page("resource", "charges/T1")},
		{"audit page by key", listAuditSQL + listAuditByKeyIDSQL + listAuditOrderSQL, "audit_entries_key_id",
			page("key_id", "k1")},
	}
	ptx, err := pg.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ptx.Rollback(ctx) }()
	if _, err := ptx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		plan := explain(t, ptx, tt.query, tt.args)
		if !strings.Contains(plan, " "+tt.index+" ") && !strings.Contains(plan, " "+tt.index+"\n") {
			t.Errorf("%s: plan does not use %s:\n%s", tt.name, tt.index, plan)
		}
		if strings.Contains(plan, "Sort") {
			t.Errorf("%s: plan sorts:\n%s", tt.name, plan)
		}
	}
}
