package db

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// createIntent records in in its own transaction and returns its id.
func createIntent(t *testing.T, db *DB, in service.Intent) int64 {
	t.Helper()
	var id int64
	inTx(t, db, func(tx service.Tx) error {
		var err error
		id, err = tx.CreateIntent(t.Context(), in)
		return err
	})
	return id
}

func TestIntentIDsSurviveReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	first := createIntent(t, db, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: time.Unix(1, 0)})
	inTx(t, db, func(tx service.Tx) error { return tx.DeleteIntent(ctx, first) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if next := createIntent(t, db, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: time.Unix(2, 0)}); next <= first {
		t.Errorf("id %d after reopening, want after %d", next, first)
	}
}

func TestIntentQueryPlans(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	// The table holds only open intents: reading all of it, in rowid
	// order, is what OpenIntents is for. It must not sort.
	if got := queryPlan(t, db, openIntentsSQL); got != "SCAN intents" {
		t.Errorf("open intents: plan %q, want a scan in rowid order", got)
	}
	if got := queryPlan(t, db, deleteIntentSQL); got != "SEARCH intents USING INTEGER PRIMARY KEY (rowid=?)" {
		t.Errorf("delete intent: plan %q, want a search by rowid", got)
	}
}
