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
