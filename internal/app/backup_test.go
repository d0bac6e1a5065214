package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// TestBackupMissingDataDir: a mistyped data directory is an error naming
// the database file, and backup creates nothing: no data directory, no
// database, no copy.
func TestBackupMissingDataDir(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "no-such-dir")
	dst := filepath.Join(t.TempDir(), "copy.db")
	err := Backup(t.Context(), Config{DataDir: dataDir}, dst)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Backup from a missing data directory: err = %v, want os.ErrNotExist", err)
	}
	if src := filepath.Join(dataDir, "papayd.db"); err != nil && !strings.Contains(err.Error(), src) {
		t.Errorf("error %q does not name the database %s", err, src)
	}
	for _, p := range []string{dataDir, dst} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a refused backup: stat %s = %v, want no file", p, err)
		}
	}
}

// TestBackupLeavesOlderSchema: backup copies a database that an older
// papayd left (schema version 2) as it is. It migrates neither the source
// nor the copy, and does not change the source file.
func TestBackupLeavesOlderSchema(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	src := filepath.Join(dataDir, "papayd.db")
	buildDB(t, src, 2)
	wantVersions := []int{1, 2}
	before := fileSum(t, src)

	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := Backup(t.Context(), Config{DataDir: dataDir}, dst); err != nil {
		t.Fatalf("Backup of a version 2 database: %v", err)
	}
	if diff := cmp.Diff(wantVersions, versions(t, src)); diff != "" {
		t.Errorf("schema versions of the source after backup (-want +got):\n%s", diff)
	}
	if !bytes.Equal(before, fileSum(t, src)) {
		t.Error("backup changed the source file")
	}
	if diff := cmp.Diff(wantVersions, versions(t, dst)); diff != "" {
		t.Errorf("schema versions of the copy (-want +got):\n%s", diff)
	}
}

// TestBackupRefusesNewerSchema: a database migrated by a newer papayd is
// refused, untouched, and no copy is left.
func TestBackupRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	src := filepath.Join(dataDir, "papayd.db")
	n := buildDB(t, src, 0)
	execSQL(t, src, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, n+1)
	before := fileSum(t, src)

	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := Backup(t.Context(), Config{DataDir: dataDir}, dst); !errors.Is(err, db.ErrSchemaTooNew) {
		t.Errorf("Backup of a newer database: err = %v, want db.ErrSchemaTooNew", err)
	}
	if !bytes.Equal(before, fileSum(t, src)) {
		t.Error("a refused backup changed the source file")
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a refused backup: stat = %v, want no copy", err)
	}
}

// TestBackupWhileStoreWrites: the backup command's path (a read-only
// connection of its own) copies a database that an open store keeps
// writing to, without failing the writers, and the copy is complete up to
// a commit.
func TestBackupWhileStoreWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dataDir := t.TempDir()
	store, err := db.Open(ctx, filepath.Join(dataDir, "papayd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	created := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	write := func(i int) error {
		return store.InTx(ctx, func(tx service.Tx) error {
			return tx.CreateAgreement(ctx, pendingAgreement(fmt.Sprintf("W%06d", i), created))
		})
	}
	const before = 200
	for i := range before {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Go(func() {
		for i := before; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			if err := write(i); err != nil {
				t.Errorf("write during backup: %v", err)
				written = i
				return
			}
		}
	})
	dst := filepath.Join(t.TempDir(), "copy.db")
	err = Backup(ctx, Config{DataDir: dataDir}, dst)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup while writing: %v", err)
	}
	cp, err := db.Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	// The codes run W000000 up without gaps: the copy holds a prefix.
	var n int
	for ; n < written; n++ {
		if _, err := cp.AgreementByOutContractCode(ctx, fmt.Sprintf("W%06d", n)); err != nil {
			break
		}
	}
	if n < before {
		t.Errorf("copy holds %d agreements, want at least the %d written before the backup", n, before)
	}
	for i := n; i < written; i++ {
		if _, err := cp.AgreementByOutContractCode(ctx, fmt.Sprintf("W%06d", i)); !errors.Is(err, service.ErrNotFound) {
			t.Fatalf("copy holds W%06d but not W%06d, written before it (%v)", i, n, err)
		}
	}
	t.Logf("copy holds %d of %d agreements", n, written)
}

// pendingAgreement is a PENDING agreement created at created.
func pendingAgreement(code string, created time.Time) service.Agreement {
	return service.Agreement{
		OutContractCode: code, PlanID: 1, OpenID: "o1", Channel: service.ChannelMiniProgram,
		Merchant: service.Merchant{SubMchID: "1900000109", SPAppID: "wx1", SubAppID: "wx2"},
		State:    service.AgreementPending, CreateTime: created, UpdateTime: created,
	}
}

// buildDB builds at path the database papayd leaves after the first n
// migrations (all of them for n = 0), from the migration files themselves,
// recording them as migrate.go does, and returns n.
func buildDB(t *testing.T, path string, n int) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "db", "migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	if n == 0 {
		n = len(files)
	}
	execSQL(t, path, `PRAGMA journal_mode=WAL`)
	execSQL(t, path, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`)
	for i, f := range files[:n] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, path, string(b))
		execSQL(t, path, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, i+1, time.Now().UnixNano())
	}
	return n
}

// execSQL runs query on the database file at path, on a connection of its own.
func execSQL(t *testing.T, path, query string, args ...any) {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// versions returns the schema versions recorded in the database file at
// path, read on a read-only connection.
func versions(t *testing.T, path string) []int {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// fileSum is the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}
