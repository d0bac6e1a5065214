package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	backupSQL = `VACUUM INTO ?`
	// hasSchemaMigrationsSQL tells a papayd database from another SQLite
	// file (or an empty one) before schemaVersionSQL reads its version.
	hasSchemaMigrationsSQL = `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')`
)

// Backup writes a consistent copy of db to dst: it is BackupFile of db's
// file.
func (db *DB) Backup(ctx context.Context, dst string) error {
	return BackupFile(ctx, db.path, dst)
}

// BackupFile writes a consistent copy of the papayd database file src, as
// of one instant, to the new file dst, creating dst's directory; Open opens
// the copy like any database file. A papayd may be writing src meanwhile.
// It refuses a dst that exists, and removes what it wrote when it fails.
//
// src is only read, on a read-only connection of its own: BackupFile runs
// no migration and starts no writer. A missing src is an error wrapping
// os.ErrNotExist (it is never created); a database migrated by a newer
// papayd is refused with ErrSchemaTooNew; one at an older schema version is
// copied as it is. A refused backup creates nothing. (When no connection
// has src open, SQLite creates its -wal and -shm files beside it, as for
// any reader of a WAL database.)
//
// The copy is VACUUM INTO: a read transaction, so in WAL mode writers go
// on committing while it runs (the copy holds what was committed when it
// began, nothing later), and the copy is compact. The copy is written with
// synchronous=FULL and then the file and its directory are synced, so a
// copy BackupFile reported done survives power loss. While it runs, the
// WAL cannot be checkpointed past its snapshot and grows with the writes.
func BackupFile(ctx context.Context, src, dst string) (err error) {
	for _, p := range []string{src, dst} {
		if p == "" || p == ":memory:" || strings.HasPrefix(p, "file:") {
			return fmt.Errorf("backup database %s to %s: %q is not a file path", src, dst, p)
		}
	}
	c, _, _, err := openSource(ctx, src)
	if err != nil {
		return fmt.Errorf("backup database %s: %w", src, err)
	}
	defer c.Close()
	if err := copyInto(ctx, c, dst); err != nil {
		return fmt.Errorf("backup database %s to %s: %w", src, dst, err)
	}
	return nil
}

// openSource opens a read-only connection (a pool of one) to the existing
// papayd database file path, after checking that this binary knows its
// schema, and returns the file's schema version and the newest this binary
// knows.
func openSource(ctx context.Context, path string) (_ *sql.DB, version, newest int, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, 0, os.ErrNotExist // the caller names path; os's error would name it again
	}
	if err != nil {
		return nil, 0, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, 0, errors.New("not a regular file")
	}
	c, err := sql.Open("sqlite", roDSN(path))
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.SetMaxOpenConns(1)
	var papayd bool
	if err := c.QueryRowContext(ctx, hasSchemaMigrationsSQL).Scan(&papayd); err != nil {
		return nil, 0, 0, err
	}
	if !papayd {
		return nil, 0, 0, errors.New("not a papayd database: no schema_migrations table")
	}
	if err := c.QueryRowContext(ctx, schemaVersionSQL).Scan(&version); err != nil {
		return nil, 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("migrations: %w", err)
	}
	if newest = ms[len(ms)-1].version; version > newest {
		return nil, 0, 0, fmt.Errorf("%w: database schema version %d, newest migration known to this binary %d",
			ErrSchemaTooNew, version, newest)
	}
	return c, version, newest, nil
}

// copyInto writes the database of c to the new file dst with VACUUM INTO,
// and syncs it.
func copyInto(ctx context.Context, c *sql.DB, dst string) (err error) {
	// An absolute path: VACUUM INTO and this process agree on the file, and
	// SQLite never reads it as a URI.
	abs, err := filepath.Abs(dst)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return err
	}
	// Creating dst here, exclusively, refuses an existing file without a
	// race; VACUUM INTO accepts an empty one. The copy holds what the
	// database holds (decrypted notifications included): owner only.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return errors.Join(err, os.Remove(abs))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeBackup(abs))
		}
	}()
	if _, err := c.ExecContext(ctx, backupSQL, abs); err != nil {
		return err
	}
	if err := syncFile(abs); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := syncFile(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// removeBackup removes the partial copy at path, and any journal SQLite
// left beside it.
func removeBackup(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-journal", path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncFile flushes the file or directory at path to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}
