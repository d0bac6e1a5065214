package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

func TestIntents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	if got := openIntents(t, db); got != nil {
		t.Errorf("OpenIntents of a new database = %v, want none", got)
	}

	created := time.Date(2026, 3, 1, 10, 0, 0, 123456789, shanghai)
	in := []service.Intent{
		{Kind: service.IntentTerminate, Key: "C1", Note: "user moved away", CreateTime: created},
		{Kind: service.IntentClose, Key: "T1", CreateTime: created.Add(time.Second)},
		// The same key under another kind is another intent.
		{Kind: service.IntentClose, Key: "C1", CreateTime: created.Add(2 * time.Second)},
		{ID: 999, Kind: service.IntentClose, Key: "T2", CreateTime: created.Add(3 * time.Second)}, // ID is ignored
	}
	for i := range in {
		id := createIntent(t, db, in[i])
		if i > 0 && id <= in[i-1].ID {
			t.Errorf("intent %d: id %d, not after %d", i, id, in[i-1].ID)
		}
		in[i].ID = id
	}
	if diff := cmp.Diff(in, openIntents(t, db)); diff != "" {
		t.Errorf("open intents (-want +got):\n%s", diff)
	}
	for _, got := range openIntents(t, db) {
		if got.CreateTime.Location() != time.UTC {
			t.Errorf("intent %d: CreateTime in %v, want UTC", got.ID, got.CreateTime.Location())
		}
	}

	// One open intent per kind and key; the refused transaction leaves
	// nothing behind.
	err := db.InTx(ctx, func(tx Tx) error {
		if _, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "T9", CreateTime: created}); err != nil {
			return err
		}
		_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentTerminate, Key: "C1", Note: "again", CreateTime: created})
		return err
	})
	if !errors.Is(err, service.ErrConflict) {
		t.Errorf("duplicate kind and key: err = %v, want ErrConflict", err)
	}
	if diff := cmp.Diff(in, openIntents(t, db)); diff != "" {
		t.Errorf("open intents after a conflict (-want +got):\n%s", diff)
	}

	// Deleting resolves; a resolved or unknown intent is not found.
	inTx(t, db, func(tx Tx) error { return tx.DeleteIntent(ctx, in[0].ID) })
	for _, id := range []int64{in[0].ID, 0, in[3].ID + 1000} {
		err := db.InTx(ctx, func(tx Tx) error { return tx.DeleteIntent(ctx, id) })
		if !errors.Is(err, service.ErrNotFound) {
			t.Errorf("DeleteIntent(%d): err = %v, want ErrNotFound", id, err)
		}
	}
	if diff := cmp.Diff(in[1:], openIntents(t, db)); diff != "" {
		t.Errorf("open intents after a delete (-want +got):\n%s", diff)
	}

	// The kind and key are free again. Delete the newest first: its id is
	// not reused, so a stale DeleteIntent of it cannot resolve the new one.
	inTx(t, db, func(tx Tx) error { return tx.DeleteIntent(ctx, in[3].ID) })
	again := service.Intent{Kind: service.IntentTerminate, Key: "C1", Note: "again", CreateTime: created.Add(time.Hour)}
	again.ID = createIntent(t, db, again)
	if again.ID <= in[3].ID {
		t.Errorf("new intent got id %d, want after every earlier id (%d)", again.ID, in[3].ID)
	}
	err = db.InTx(ctx, func(tx Tx) error { return tx.DeleteIntent(ctx, in[3].ID) })
	if !errors.Is(err, service.ErrNotFound) {
		t.Errorf("stale DeleteIntent(%d): err = %v, want ErrNotFound", in[3].ID, err)
	}
	// Oldest first: in the order recorded.
	if diff := cmp.Diff([]service.Intent{in[1], in[2], again}, openIntents(t, db)); diff != "" {
		t.Errorf("open intents at the end (-want +got):\n%s", diff)
	}
}

func TestIntentNeedsCreateTime(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	err := db.InTx(ctx, func(tx Tx) error {
		_, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "T1"})
		return err
	})
	if err == nil {
		t.Error("CreateIntent without a create time succeeded, want an error")
	}
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
