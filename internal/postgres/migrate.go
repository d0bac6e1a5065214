package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaTooNew is returned by Migrate (and Open) for a database migrated
// by a newer papayd: its recorded schema version is above the newest
// embedded migration, and this binary does not know that schema.
var ErrSchemaTooNew = errors.New("database schema is newer than this papayd")

// migrationLock is the key of the session advisory lock Migrate holds while
// it reads and applies migrations ("papayd" and 1), so that replicas
// starting at once apply each migration once, one after the other.
const migrationLock int64 = 0x7061706179640001

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered file of migrations/.
type migration struct {
	version int
	name    string
	sql     string
	// minReader is the oldest schema version whose papayd may run on the
	// database once this migration is applied: a line "-- min-reader: N"
	// of the file, else the migration's own version. A migration that only
	// adds (nullable columns, tables, indexes) names the version before
	// it, so replicas of the previous release keep running, and may
	// restart, during a rolling upgrade.
	minReader int
}

// minReaderPrefix begins the line of a migration that names its minReader.
const minReaderPrefix = "-- min-reader: "

// parseMinReader returns the minReader a migration of version v declares.
func parseMinReader(sql string, v int) (int, error) {
	for line := range strings.Lines(sql) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(minReaderPrefix))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || n < 1 || n > v {
			return 0, fmt.Errorf("%q: want a version from 1 to %d", strings.TrimSpace(line), v)
		}
		return n, nil
	}
	return v, nil
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
		minReader, err := parseMinReader(string(b), v)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		if len(ms) > 0 && minReader < ms[len(ms)-1].minReader {
			return nil, fmt.Errorf("migration %s: min-reader %d is below the previous migration's %d", base, minReader, ms[len(ms)-1].minReader)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b), minReader: minReader})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

const (
	lockSQL   = `SELECT pg_advisory_lock($1)`
	unlockSQL = `SELECT pg_advisory_unlock($1)`

	createSchemaMigrationsSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT  NOT NULL, -- unix nanoseconds UTC
	min_reader INTEGER NOT NULL  -- the oldest schema whose papayd runs on this one
)`
	// schemaVersionSQL reads the highest version recorded, how many are
	// (versions 1..n are recorded exactly when both are n), and the oldest
	// schema version whose papayd may run on the database.
	schemaVersionSQL   = `SELECT COALESCE(MAX(version), 0), COUNT(*), COALESCE(MAX(min_reader), 0) FROM schema_migrations`
	recordMigrationSQL = `INSERT INTO schema_migrations (version, applied_at, min_reader) VALUES ($1, $2, $3)`
)

// Migrate applies the embedded migrations the database of pool has not
// recorded yet, each in its own transaction with its record in
// schema_migrations. It holds a session advisory lock (migrationLock) on
// one connection throughout, so that concurrent callers, in this process or
// in other replicas, wait for each other and each migration is applied
// once. A database of a newer schema is left as it is: this papayd runs on
// it when every newer migration declares it may (min-reader, a rolling
// upgrade), and Migrate returns ErrSchemaTooNew otherwise. Recorded
// versions that are not 1..n are an error.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	_, err = applyMigrations(ctx, pool, ms)
	return err
}

// applyMigrations applies the migrations of ms, which run 1..n, that the
// database has not recorded yet, and returns how many it applied. Tests
// call it with sets of their own.
func applyMigrations(ctx context.Context, pool *pgxpool.Pool, ms []migration) (applied int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	if _, err := conn.Exec(ctx, lockSQL, migrationLock); err != nil {
		// The wait may have been canceled after the server granted the
		// lock: end the session, which releases it.
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return 0, fmt.Errorf("migrations: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), unlockSQL, migrationLock); uerr != nil {
			_ = conn.Hijack().Close(context.WithoutCancel(ctx)) // ending the session releases the lock
			return
		}
		conn.Release()
	}()

	if _, err := conn.Exec(ctx, createSchemaMigrationsSQL); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	var current, recorded, minReader int
	if err := conn.QueryRow(ctx, schemaVersionSQL).Scan(&current, &recorded, &minReader); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if newest := ms[len(ms)-1].version; current > newest && minReader > newest {
		return 0, fmt.Errorf("%w: database schema version %d runs papayd of schema %d and later, this binary knows %d",
			ErrSchemaTooNew, current, minReader, newest)
	}
	if recorded != current {
		return 0, fmt.Errorf("schema_migrations records %d versions up to %d: a version is missing", recorded, current)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		applied++
	}
	return applied, nil
}

// applyMigration runs m and records it in one transaction. A migration
// without parameters runs on the simple protocol, so a file may hold many
// statements.
func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, recordMigrationSQL, m.version, time.Now().UTC().UnixNano(), m.minReader)
		return err
	})
}
