package postgres

import (
	"testing"

	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/storetest"
)

// TestConformance runs the store contract's suite on PostgreSQL, each
// subtest on a new, empty database of the shared cluster.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store {
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
	})
}
