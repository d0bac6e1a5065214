package app

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/papayd/papayd/internal/db"
)

// Backup writes a consistent copy of papayd's database (which may be in use
// by a running papayd) to dst.
func Backup(ctx context.Context, cfg Config, dst string) error {
	store, err := db.Open(ctx, filepath.Join(cfg.DataDir, "papayd.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Backup(ctx, dst); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
