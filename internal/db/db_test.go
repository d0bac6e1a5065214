package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
	"modernc.org/sqlite"
)

// openTestDB opens a fresh database file under t.TempDir(), in a directory
// Open has to create.
func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "data", "papayd.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// inTx runs fn in a transaction and fails the test on error.
func inTx(t *testing.T, db *DB, fn func(service.Tx) error) {
	t.Helper()
	if err := db.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// pragmas reads the pragmas Open sets from one connection.
func pragmas(t *testing.T, c *sql.Conn) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, p := range []string{"journal_mode", "busy_timeout", "foreign_keys", "synchronous", "query_only"} {
		var v string
		if err := c.QueryRowContext(t.Context(), "PRAGMA "+p).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", p, err)
		}
		got[p] = v
	}
	return got
}

func TestOpenPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	want := map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "foreign_keys": "1", "synchronous": "2"}

	w, err := db.write.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want["query_only"] = "0"
	if diff := cmp.Diff(want, pragmas(t, w)); diff != "" {
		t.Errorf("writer pragmas (-want +got):\n%s", diff)
	}
	w.Close()

	// Hold several read connections at once, so each is a distinct one.
	want["query_only"] = "1"
	for i := range 3 {
		c, err := db.read.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if diff := cmp.Diff(want, pragmas(t, c)); diff != "" {
			t.Errorf("reader %d pragmas (-want +got):\n%s", i, diff)
		}
	}
	if n := db.read.Stats().OpenConnections; n < 3 {
		t.Errorf("read pool has %d open connections, want >= 3", n)
	}
}

func TestReadPoolRefusesWrites(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	if _, err := db.read.ExecContext(t.Context(), "DELETE FROM agreements"); err == nil {
		t.Error("a write on the read pool succeeded, want query_only to refuse it")
	}
}

func TestOpenPathNeedsEscaping(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a?b#c%20d", "papayd.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not at %q: %v", path, err)
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if db, err := Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a := fullAgreement("OCC1", "C1", time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC))
	n := service.NotificationRecord{ID: "N1", EventType: service.EventContractSigned, Outcome: service.OutcomeApplied}
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.CreateAgreement(ctx, a); err != nil {
			return err
		}
		return tx.InsertNotification(ctx, n)
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		db, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		got, err := db.AgreementByContractID(ctx, "C1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("agreement after reopen (-want +got):\n%s", diff)
		}
		err = db.InTx(ctx, func(tx service.Tx) error { return tx.InsertNotification(ctx, n) })
		if !errors.Is(err, service.ErrConflict) {
			t.Errorf("notification after reopen: InsertNotification = %v, want ErrConflict", err)
		}
		if diff := cmp.Diff(embeddedVersions(t), appliedVersions(t, db)); diff != "" {
			t.Errorf("schema_migrations (-want +got):\n%s", diff)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, recordMigrationSQL, 9999, 0); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open = %v, want ErrSchemaTooNew", err)
	}
	vs := embeddedVersions(t)
	for _, s := range []string{"version 9999", fmt.Sprintf("newest migration known to this binary %d", vs[len(vs)-1])} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Open error %q does not mention %q", err, s)
		}
	}
}

// embeddedVersions lists the versions of the embedded migrations.
func embeddedVersions(t *testing.T) []int {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

// appliedVersions lists the rows of schema_migrations.
func appliedVersions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.read.QueryContext(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
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
	return vs
}

// TestFilesAreOwnerOnly: the database and its -wal and -shm files hold
// decrypted notifications: 0600, whether papayd creates them or an older
// papayd left them readable by others.
func TestFilesAreOwnerOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "papayd.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", when, filepath.Base(p), m)
			}
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: directory mode %v (%v), want no access for others", when, fi.Mode().Perm(), err)
		}
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	inTx(t, db, func(tx service.Tx) error {
		return tx.InsertNotification(ctx, service.NotificationRecord{ID: "N1", Outcome: service.OutcomeApplied})
	})
	check("a new database")
	// As an older papayd left them (the directory is the app's to tighten).
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inTx(t, db, func(tx service.Tx) error {
		return tx.InsertNotification(ctx, service.NotificationRecord{ID: "N2", Outcome: service.OutcomeApplied})
	})
	check("a reopened database")
}

// TestOpenSyncsWithFdatasync: an opened store commits with fdatasync(2)
// where the platform has it (sync.go).
func TestOpenSyncsWithFdatasync(t *testing.T) {
	openTestDB(t)
	if runtime.GOOS == "linux" && !sqlite.FdatasyncEnabled() {
		t.Fatal("SQLite commits with fsync after Open, want fdatasync")
	}
}
