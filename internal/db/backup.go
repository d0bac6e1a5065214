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

const backupSQL = `VACUUM INTO ?`

// Backup writes a consistent copy of the database, as of one instant, to
// the new file dst, creating dst's directory; Open opens the copy like any
// database file. It refuses a dst that exists, and removes what it wrote
// when it fails.
//
// The copy is VACUUM INTO on a connection of its own: a read transaction,
// so in WAL mode writers go on committing while it runs (the copy holds
// what was committed when it began, nothing later), and the copy is
// compact. The copy is written with synchronous=FULL and then the file and
// its directory are synced, so a copy Backup reported done survives power
// loss. While it runs, the WAL cannot be checkpointed past its snapshot
// and grows with the writes.
func (db *DB) Backup(ctx context.Context, dst string) (err error) {
	if dst == "" || dst == ":memory:" || strings.HasPrefix(dst, "file:") {
		return fmt.Errorf("backup database: %q is not a file path", dst)
	}
	// An absolute path: VACUUM INTO and this process agree on the file, and
	// SQLite never reads it as a URI.
	abs, err := filepath.Abs(dst)
	if err != nil {
		return fmt.Errorf("backup database to %s: %w", dst, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return fmt.Errorf("backup database to %s: %w", dst, err)
	}
	// Creating dst here, exclusively, refuses an existing file without a
	// race; VACUUM INTO accepts an empty one. The copy holds what the
	// database holds (decrypted notifications included): owner only.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup database to %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return errors.Join(fmt.Errorf("backup database to %s: %w", dst, err), os.Remove(abs))
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeBackup(abs))
		}
	}()

	if err := db.vacuumInto(ctx, abs); err != nil {
		return fmt.Errorf("backup database to %s: %w", dst, err)
	}
	if err := syncFile(abs); err != nil {
		return fmt.Errorf("backup database to %s: sync: %w", dst, err)
	}
	if err := syncFile(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("backup database to %s: sync directory: %w", dst, err)
	}
	return nil
}

// vacuumInto runs VACUUM INTO dst on a connection opened for it: the read
// pool's query_only forbids the statement, which writes (to dst), and the
// writer connection must stay free for the writers.
func (db *DB) vacuumInto(ctx context.Context, dst string) error {
	c, err := sql.Open("sqlite", dsn(db.path))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	if _, err := c.ExecContext(ctx, backupSQL, dst); err != nil {
		return err
	}
	return c.Close()
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
