package db

import (
	"path/filepath"
	"testing"

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/storetest"
)

// TestConformance runs the store contract's suite on SQLite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) service.Store {
		db, err := Open(t.Context(), filepath.Join(t.TempDir(), "papayd.db"))
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
