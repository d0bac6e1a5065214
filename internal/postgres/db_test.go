package postgres

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/papayd/papayd/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// openTestDB opens a store on a new, empty database, closed when the test
// ends.
func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), pgtest.Shared(t).NewDatabase(t.Context(), t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// newPool connects a pool to url, closed when the test ends.
func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// inTx runs fn in a transaction and fails the test on error.
func inTx(t *testing.T, db *DB, fn func(Tx) error) {
	t.Helper()
	if err := db.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}
