package db

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// openBackup backs db up to a new file, in a directory Backup has to
// create, and opens the copy. The copy passes PRAGMA integrity_check.
func openBackup(t *testing.T, db *DB) *DB {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "backups", "nested", "copy.db")
	if err := db.Backup(t.Context(), dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	cp, err := Open(t.Context(), dst)
	if err != nil {
		t.Fatalf("Open of the copy: %v", err)
	}
	t.Cleanup(func() { cp.Close() })
	var ok string
	if err := cp.read.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check of the copy = %q, %v", ok, err)
	}
	return cp
}

// dump reads every row of every table of db, schema_migrations and
// sqlite_sequence included, in rowid order.
func dump(t *testing.T, db *DB) map[string][][]any {
	t.Helper()
	ctx := t.Context()
	tables := map[string][][]any{}
	for _, s := range schema(t, db) {
		var name string
		if _, err := fmt.Sscanf(s, "table %s", &name); err != nil {
			continue // an index
		}
		name = name[:len(name)-1] // the colon
		rows, err := db.read.QueryContext(ctx, `SELECT * FROM "`+name+`" ORDER BY rowid`)
		if err != nil {
			t.Fatalf("dump %s: %v", name, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		tables[name] = [][]any{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			tables[name] = append(tables[name], vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return tables
}

// TestBackupCopiesEverything: the copy opens, has the schema, and holds
// every row of every table.
func TestBackupCopiesEverything(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	seedList(t, db)
	seedCharges(t, db)
	created := time.Date(2026, 3, 1, 10, 0, 0, 1, time.UTC)
	inTx(t, db, func(tx service.Tx) error {
		if err := tx.InsertNotification(ctx, service.NotificationRecord{ID: "N1", Outcome: service.OutcomeApplied,
			Resource: []byte{0, 1, 2, 0xff}}); err != nil {
			return err
		}
		if err := tx.InsertAnomaly(ctx, service.Anomaly{Kind: "AMOUNT", OutTradeNo: "A", Time: created}); err != nil {
			return err
		}
		if err := tx.CreateRefund(ctx, fullRefund("R1", "W1", created)); err != nil {
			return err
		}
		id, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: "A", CreateTime: created})
		if err != nil {
			return err
		}
		if err := tx.DeleteIntent(ctx, id); err != nil { // leaves its trace in sqlite_sequence
			return err
		}
		_, err = tx.CreateIntent(ctx, service.Intent{Kind: service.IntentTerminate, Key: "C1", Note: "n", CreateTime: created})
		return err
	})
	if err := db.RecordWeChatCall(ctx, service.WeChatCall{Method: "POST", Path: "/v3/x", HTTPStatus: 200, Time: created}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(service.Tx) error { return nil }); err != nil { // commits the audit row
		t.Fatal(err)
	}

	want := dump(t, db)
	cp := openBackup(t, db)
	if diff := cmp.Diff(schema(t, db), schema(t, cp)); diff != "" {
		t.Errorf("schema of the copy (-want +got):\n%s", diff)
	}
	got := dump(t, cp)
	for _, table := range []string{"agreements", "charges", "refunds", "notifications", "anomalies", "intents", "wechat_calls", "schema_migrations", "sqlite_sequence"} {
		if len(want[table]) == 0 {
			t.Errorf("test data has no rows in %s", table)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows of the copy (-want +got):\n%s", diff)
	}
	// The copy is a database of its own: writing to it leaves db alone.
	inTx(t, cp, func(tx service.Tx) error { return tx.DeleteAgreement(ctx, "A") })
	if _, err := db.AgreementByOutContractCode(ctx, "A"); err != nil {
		t.Errorf("the source after a write to the copy: %v", err)
	}
	// And it is private to its owner.
	if fi, err := os.Stat(cp.path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("copy mode %v (%v), want no group or other access", fi.Mode(), err)
	}
}

func TestBackupRefusesExistingFile(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	dir := t.TempDir()
	for _, content := range []string{"", "not a database"} { // VACUUM INTO alone would take the empty one
		dst := filepath.Join(dir, fmt.Sprintf("exists-%d.db", len(content)))
		if err := os.WriteFile(dst, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := db.Backup(t.Context(), dst); !errors.Is(err, os.ErrExist) {
			t.Errorf("Backup over a file of %d bytes: err = %v, want os.ErrExist", len(content), err)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != content {
			t.Errorf("existing file after a refused Backup: %q, %v; want it untouched", b, err)
		}
	}
	if err := db.Backup(t.Context(), dir); !errors.Is(err, os.ErrExist) {
		t.Errorf("Backup over a directory: err = %v, want os.ErrExist", err)
	}
	for _, dst := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if err := db.Backup(t.Context(), dst); err == nil {
			t.Errorf("Backup(%q) succeeded, want an error", dst)
		}
	}
}

// TestBackupFailureLeavesNoFile: a Backup that fails before it copies
// (cancelled) and one that fails while it copies (a damaged page in the
// source) leave no file behind, and the same dst works afterwards.
func TestBackupFailureLeavesNoFile(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	seedCharges(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Backup(ctx, dst); err == nil {
		t.Fatal("Backup with a cancelled context succeeded")
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed Backup: stat = %v, want no file", err)
	}
	if err := db.Backup(t.Context(), dst); err != nil {
		t.Errorf("Backup after a failed one: %v", err)
	}

	// A source whose schema reads but whose last pages (charges, inserted
	// last) are damaged: VACUUM INTO fails after dst was created.
	src := filepath.Join(t.TempDir(), "damaged.db")
	damaged, err := Open(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	inTx(t, damaged, func(tx service.Tx) error {
		for i := range 500 {
			if err := tx.CreateCharge(t.Context(), fullCharge(fmt.Sprintf("D%05d", i), "", chargeBase)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := damaged.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xa5}, int(fi.Size()/4))
	if _, err := f.WriteAt(junk, fi.Size()-int64(len(junk))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dst = filepath.Join(t.TempDir(), "copy.db")
	err = BackupFile(t.Context(), src, dst)
	if err == nil {
		t.Fatal("BackupFile of a damaged database succeeded")
	}
	t.Logf("BackupFile of a damaged database: %v", err)
	if fs, _ := filepath.Glob(dst + "*"); len(fs) != 0 {
		t.Errorf("after a failed BackupFile: %v, want no file", fs)
	}
}

// TestBackupFileMissingSource: BackupFile refuses a source that does not
// exist, naming it, and creates nothing: no source, no directory, no copy.
func TestBackupFileMissingSource(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "no-such-dir")
	src := filepath.Join(dir, "papayd.db")
	dst := filepath.Join(t.TempDir(), "backups", "copy.db")
	err := BackupFile(t.Context(), src, dst)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), src) {
		t.Errorf("BackupFile from a missing file: err = %v, want os.ErrNotExist naming %s", err, src)
	}
	for _, p := range []string{dir, filepath.Dir(dst)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a refused BackupFile: stat %s = %v, want nothing", p, err)
		}
	}
	// A directory, an SQLite file that is not papayd's, and paths that are
	// not files are refused too, creating nothing.
	other := filepath.Join(t.TempDir(), "other.db")
	c, err := sql.Open("sqlite", dsn(other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, src := range []string{t.TempDir(), other, "", ":memory:", "file:x.db"} {
		if err := BackupFile(t.Context(), src, dst); err == nil {
			t.Errorf("BackupFile(%q) succeeded, want an error", src)
		}
	}
	if _, err := os.Stat(filepath.Dir(dst)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after refused BackupFiles: stat = %v, want nothing", err)
	}
}

// TestBackupFileOlderSchema: a database an older papayd left (schema
// version 2) is copied as it is: neither it nor the copy is migrated, and
// the source file is unchanged. Open migrates the copy like any old file.
func TestBackupFileOlderSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := filepath.Join(t.TempDir(), "v2.db")
	oldDB(t, src, 2, func(tx *sql.Tx) error {
		a := beforeReconcile(fullAgreement("A", "C1", chargeBase))
		_, err := tx.ExecContext(ctx, insertV1AgreementSQL, agreementArgs(a)...)
		return err
	})
	before := readFile(t, src)
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := BackupFile(ctx, src, dst); err != nil {
		t.Fatalf("BackupFile of a version 2 database: %v", err)
	}
	if !bytes.Equal(before, readFile(t, src)) {
		t.Error("BackupFile changed the source file")
	}
	for _, p := range []string{src, dst} {
		if v := fileVersion(t, p); v != 2 {
			t.Errorf("%s at schema version %d after BackupFile, want 2", filepath.Base(p), v)
		}
	}
	cp, err := Open(ctx, dst)
	if err != nil {
		t.Fatalf("Open of the copy: %v", err)
	}
	defer cp.Close()
	if _, err := cp.AgreementByOutContractCode(ctx, "A"); err != nil {
		t.Errorf("agreement in the migrated copy: %v", err)
	}
}

// TestBackupFileNewerSchema: a database migrated by a newer papayd is
// refused with ErrSchemaTooNew, unchanged, and no copy is left.
func TestBackupFileNewerSchema(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	if _, err := db.write.ExecContext(t.Context(), recordMigrationSQL, len(embeddedVersions(t))+1, 0); err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := BackupFile(t.Context(), db.path, dst); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("BackupFile of a newer database: err = %v, want ErrSchemaTooNew", err)
	}
	if diff := cmp.Diff(before, dump(t, db)); diff != "" {
		t.Errorf("source after a refused BackupFile (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a refused BackupFile: stat = %v, want no copy", err)
	}
}

// readFile returns the contents of the file at path.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileVersion reads the schema version of the database file at path on a
// read-only connection.
func fileVersion(t *testing.T, path string) int {
	t.Helper()
	c, err := sql.Open("sqlite", roDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var v int
	if err := c.QueryRowContext(t.Context(), schemaVersionSQL).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBackupWhileWriting: four goroutines keep committing charges while
// Backup runs. Backup neither waits for them nor makes them fail, and the
// copy is consistent: it holds every charge committed before Backup
// started, and only charges that were committed.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	// Enough data that the copy takes a while.
	const seeded = 1000
	inTx(t, db, func(tx service.Tx) error {
		for i := range seeded {
			if err := tx.CreateCharge(ctx, fullCharge(fmt.Sprintf("S%05d", i), "", chargeBase.Add(time.Duration(i)))); err != nil {
				return err
			}
		}
		return nil
	})

	const writers = 4
	var (
		mu        sync.Mutex
		committed = map[string]bool{}
		started   sync.WaitGroup // each writer committed at least once
		stop      = make(chan struct{})
		during    atomic.Int64 // commits while Backup ran
		inBackup  atomic.Bool
		wg        sync.WaitGroup
	)
	started.Add(writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				no := fmt.Sprintf("W%d-%06d", w, i)
				err := db.InTx(ctx, func(tx service.Tx) error {
					// Two writes per transaction: the copy must see both or neither.
					c := fullCharge(no, "", chargeBase.Add(time.Hour))
					c.State = service.ChargePending
					if err := tx.CreateCharge(ctx, c); err != nil {
						return err
					}
					c.CheckAttempts = 7
					return tx.UpdateCharge(ctx, c)
				})
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					if i == 0 {
						started.Done()
					}
					return
				}
				if inBackup.Load() {
					during.Add(1)
				}
				mu.Lock()
				committed[no] = true
				mu.Unlock()
				if i == 0 {
					started.Done()
				}
			}
		})
	}
	started.Wait()

	mu.Lock()
	before := make(map[string]bool, len(committed))
	for no := range committed {
		before[no] = true
	}
	mu.Unlock()
	inBackup.Store(true)
	begin := time.Now()
	dst := filepath.Join(t.TempDir(), "backup", "copy.db")
	err := BackupFile(ctx, db.path, dst) // as papayd backup does, from another connection
	took := time.Since(begin)
	inBackup.Store(false)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup while writing: %v", err)
	}
	t.Logf("Backup took %v; %d transactions committed meanwhile; %d before it, %d in all",
		took, during.Load(), len(before), len(committed))

	cp, err := Open(ctx, dst)
	if err != nil {
		t.Fatalf("Open of the copy: %v", err)
	}
	defer cp.Close()
	var ok string
	if err := cp.read.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check of the copy = %q, %v", ok, err)
	}
	rows, err := cp.read.QueryContext(ctx, `SELECT out_trade_no, check_attempts FROM charges`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	inCopy := map[string]bool{}
	for rows.Next() {
		var no string
		var attempts int
		if err := rows.Scan(&no, &attempts); err != nil {
			t.Fatal(err)
		}
		inCopy[no] = true
		if no[0] == 'W' && attempts != 7 {
			t.Errorf("copy holds %s halfway through its transaction (check_attempts %d)", no, attempts)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range seeded {
		if no := fmt.Sprintf("S%05d", i); !inCopy[no] {
			t.Errorf("copy lacks seeded charge %s", no)
		}
	}
	for no := range before {
		if !inCopy[no] {
			t.Errorf("copy lacks %s, committed before Backup started", no)
		}
	}
	for no := range inCopy {
		if no[0] == 'W' && !committed[no] {
			t.Errorf("copy holds %s, which was never committed", no)
		}
	}
}

func TestOpenReaderReadsWithoutWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "papayd.db")
	if _, err := OpenReader(ctx, path); err == nil {
		t.Fatal("OpenReader of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReader created the file: %v", err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	inTx(t, db, func(tx service.Tx) error {
		return tx.CreateCharge(ctx, fullCharge("T1", "X1", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)))
	})
	r, err := OpenReader(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cs, _, err := r.ListCharges(ctx, service.ChargeFilter{PageSize: 10})
	if err != nil || len(cs) != 1 || cs[0].OutTradeNo != "T1" {
		t.Fatalf("ListCharges: %v %v", cs, err)
	}
	if _, err := r.conn.ExecContext(ctx, `DELETE FROM charges`); err == nil {
		t.Fatal("a write through the reader succeeded")
	}
	db.Close()
}
