package db

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimIdentity: the first claim records the mode and sp_mchid; the
// same claim succeeds again, also after a reopen; another mode or another
// sp_mchid is refused with ErrOtherIdentity, naming both.
func TestClaimIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("same claim after reopen: %v", err)
	}
	for _, tt := range []struct{ mode, spMchID string }{
		{"live", "1900000100"}, {"sandbox", "1230000109"}, {"live", "1230000109"},
	} {
		err := db.ClaimIdentity(ctx, tt.mode, tt.spMchID)
		if !errors.Is(err, ErrOtherIdentity) {
			t.Errorf("claim %s %s: %v, want ErrOtherIdentity", tt.mode, tt.spMchID, err)
			continue
		}
		for _, s := range []string{"sandbox mode (sp_mchid 1900000100)", tt.mode + " mode, sp_mchid " + tt.spMchID} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("claim %s %s: error %q does not say %q", tt.mode, tt.spMchID, err, s)
			}
		}
	}
	for _, tt := range []struct{ mode, spMchID string }{{"", "1"}, {"live", ""}, {"prod", "1"}} {
		if err := db.ClaimIdentity(ctx, tt.mode, tt.spMchID); err == nil || errors.Is(err, ErrOtherIdentity) {
			t.Errorf("claim %q %q: %v, want a refusal of the arguments", tt.mode, tt.spMchID, err)
		}
	}
}

// TestClaimIdentityAdoptsOldDatabase: a database from before 0006, with
// records in it, has no identity; the first papayd to open it claims it.
func TestClaimIdentityAdoptsOldDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	oldDB(t, path, 5, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO notifications (id, sp_mchid, sub_mchid, event_type, summary,
			outcome, out_contract_code, contract_id) VALUES ('n1', '1230000109', '1900000109', 'PAPAY.SIGN', 's', 'APPLIED', 'c', 'k')`)
		return err
	})
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.ClaimIdentity(ctx, "live", "1230000109"); err != nil {
		t.Fatalf("adopting claim: %v", err)
	}
	if err := db.ClaimIdentity(ctx, "sandbox", "1230000109"); !errors.Is(err, ErrOtherIdentity) {
		t.Fatalf("claim by the other mode after adoption: %v", err)
	}
}

// TestReaderCheckIdentity: a reader of a claimed database refuses another
// mode or sp_mchid, naming the file; an unclaimed database passes.
func TestReaderCheckIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := OpenReader(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.CheckIdentity(ctx, "live", "1230000109"); err != nil {
		t.Fatalf("unclaimed database: %v", err)
	}
	if err := db.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("same identity: %v", err)
	}
	err = r.CheckIdentity(ctx, "live", "1900000100")
	if !errors.Is(err, ErrOtherIdentity) || !strings.Contains(err.Error(), path+" belongs to sandbox mode") {
		t.Fatalf("other mode: %v", err)
	}
}
