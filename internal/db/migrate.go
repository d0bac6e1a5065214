package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew is returned by Open for a database migrated by a newer
// papayd: its recorded schema version is above the newest embedded
// migration, and this binary does not know that schema.
var ErrSchemaTooNew = errors.New("database schema is newer than this papayd")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered file of migrations/.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the files of fsys named NNNN_name.sql, in version
// order. Versions must run 1, 2, 3, ... without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names { // fs.Glob sorts, and versions are zero-padded
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", base)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", base, v, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

const createSchemaMigrationsSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL -- unix nanoseconds UTC
) STRICT`

const schemaVersionSQL = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`

// migrate applies the embedded migrations db has not recorded yet.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return applyMigrations(ctx, db, ms)
}

// applyMigrations applies the migrations of ms, which run 1..n, that db
// has not recorded yet. Tests call it with a prefix of the embedded ones to
// build a database of an older schema.
func applyMigrations(ctx context.Context, db *sql.DB, ms []migration) error {
	if _, err := db.ExecContext(ctx, createSchemaMigrationsSQL); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, schemaVersionSQL).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest := ms[len(ms)-1].version; current > newest {
		return fmt.Errorf("%w: database schema version %d, newest migration known to this binary %d",
			ErrSchemaTooNew, current, newest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

const (
	migrationAppliedSQL = `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`
	recordMigrationSQL  = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
)

// applyMigration runs m and records it in one transaction. It checks again
// under the write lock, so a papayd opening the same file at the same time
// cannot apply m twice.
func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var applied bool
	if err := tx.QueryRowContext(ctx, migrationAppliedSQL, m.version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, recordMigrationSQL, m.version, time.Now().UTC().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}
