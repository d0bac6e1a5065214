package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	for _, table := range []string{"agreements", "charges", "notifications", "anomalies", "intents", "wechat_calls", "schema_migrations", "sqlite_sequence"} {
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
	// The same dst works afterwards.
	if err := db.Backup(t.Context(), dst); err != nil {
		t.Errorf("Backup after a failed one: %v", err)
	}
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
	err := db.Backup(ctx, dst)
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
