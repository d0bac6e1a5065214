package app

import (
	"context"
	"path/filepath"

	"github.com/papayd/papayd/internal/db"
)

// Backup writes a consistent copy of papayd's database (which may be in use
// by a running papayd) to dst. It only reads the data directory: a missing
// database is an error (os.ErrNotExist), and the database is neither
// created nor migrated (see db.BackupFile).
func Backup(ctx context.Context, cfg Config, dst string) error {
	return db.BackupFile(ctx, filepath.Join(cfg.DataDir, "papayd.db"), dst)
}
