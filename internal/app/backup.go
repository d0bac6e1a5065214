package app

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/papayd/papayd/internal/db"
)

// Backup writes a consistent copy of papayd's database (which may be in use
// by a running papayd) to dst. It only reads the data directory: a missing
// database is an error (os.ErrNotExist), and the database is neither
// created nor migrated (see db.BackupFile).
// PostgreSQL's is backed up with its own tools (pg_dump).
func Backup(ctx context.Context, cfg Config, dst string) error {
	if cfg.usesPostgres() {
		return errors.New("papayd backup copies the SQLite database; PAPAYD_DATABASE_URL names PostgreSQL: back it up with pg_dump (see the README)")
	}
	return db.BackupFile(ctx, filepath.Join(cfg.DataDir, "papayd.db"), dst)
}
