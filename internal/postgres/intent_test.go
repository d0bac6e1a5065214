package postgres

import (
	"testing"
	"time"

	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/service"
)

// createIntent records in in its own transaction and returns its id.
func createIntent(t *testing.T, db *DB, in service.Intent) int64 {
	t.Helper()
	var id int64
	inTx(t, db, func(tx Tx) error {
		var err error
		id, err = tx.CreateIntent(t.Context(), in)
		return err
	})
	return id
}

// openIntents reads the open intents and fails the test on error.
func openIntents(t *testing.T, db *DB) []service.Intent {
	t.Helper()
	ins, err := db.OpenIntents(t.Context())
	if err != nil {
		t.Fatalf("OpenIntents: %v", err)
	}
	return ins
}

// TestIntentIDsSurviveReopen: an id is not reused by a store opened later
// on the same database.
func TestIntentIDsSurviveReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.Shared(t).NewDatabase(ctx, t)
	db, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	first := createIntent(t, db, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: time.Unix(1, 0)})
	inTx(t, db, func(tx Tx) error { return tx.DeleteIntent(ctx, first) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if next := createIntent(t, db, service.Intent{Kind: service.IntentClose, Key: "T1", CreateTime: time.Unix(2, 0)}); next <= first {
		t.Errorf("id %d after reopening, want after %d", next, first)
	}
}
