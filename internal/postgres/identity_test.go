package postgres

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/papayd/papayd/internal/pgtest"
)

// TestClaimIdentity: the first claim records the mode and sp_mchid; the
// same claim succeeds again, also from another store on the database;
// another mode or another sp_mchid is refused with ErrOtherIdentity,
// naming both.
func TestClaimIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	if err := db.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	other, err := Open(ctx, db.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("same claim by another store: %v", err)
	}
	for _, tt := range []struct{ mode, spMchID string }{
		{"live", "1900000100"}, {"sandbox", "1230000109"}, {"live", "1230000109"},
	} {
		err := other.ClaimIdentity(ctx, tt.mode, tt.spMchID)
		if !errors.Is(err, ErrOtherIdentity) {
			t.Errorf("claim %s %s: %v, want ErrOtherIdentity", tt.mode, tt.spMchID, err)
			continue
		}
		for _, s := range []string{"sandbox mode (sp_mchid 1900000100)", tt.mode + " mode, sp_mchid " + tt.spMchID,
			"database " + db.pool.Config().ConnConfig.Database} {
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

// TestClaimIdentityRace: replicas claiming a new database at once with
// different identities: exactly one claim wins, the others are refused,
// and no claim fails otherwise.
func TestClaimIdentityRace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.Shared(t).NewDatabase(ctx, t)
	const n = 6
	dbs := make([]*DB, n)
	for i := range dbs {
		db, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.ClaimIdentity(ctx, "live", string(rune('1'+i))+"230000109") })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrOtherIdentity):
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d claims won, want 1: %v", won, errs)
	}
}

// TestCheckIdentity: a database without an identity passes; a claimed one
// refuses another mode or sp_mchid, and CheckIdentity claims nothing.
func TestCheckIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	if err := db.CheckIdentity(ctx, "live", "1230000109"); err != nil {
		t.Fatalf("unclaimed database: %v", err)
	}
	if err := db.ClaimIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("claim after a check: %v", err)
	}
	if err := db.CheckIdentity(ctx, "sandbox", "1900000100"); err != nil {
		t.Fatalf("same identity: %v", err)
	}
	if err := db.CheckIdentity(ctx, "live", "1900000100"); !errors.Is(err, ErrOtherIdentity) ||
		!strings.Contains(err.Error(), "belongs to sandbox mode") {
		t.Fatalf("other mode: %v", err)
	}
}
