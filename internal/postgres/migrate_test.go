package postgres

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/papayd/papayd/internal/pgtest"
)

// versions returns the versions schema_migrations records, in order.
func versions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
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

func embedded(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestMigrateOnce(t *testing.T) {
	t.Parallel()
	db := openTestDB(t) // applies every migration
	ms := embedded(t)
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	if diff := cmp.Diff(want, versions(t, db)); diff != "" {
		t.Errorf("versions after Open (-want +got):\n%s", diff)
	}
	// Again: nothing to apply, nothing recorded twice.
	n, err := applyMigrations(t.Context(), db.pool, ms)
	if err != nil || n != 0 {
		t.Errorf("second run: applied %d, err %v; want 0, nil", n, err)
	}
	if err := Migrate(t.Context(), db.pool); err != nil {
		t.Errorf("Migrate again: %v", err)
	}
	if diff := cmp.Diff(want, versions(t, db)); diff != "" {
		t.Errorf("versions after a second run (-want +got):\n%s", diff)
	}
}

// TestMigrateConcurrently runs the migrations from two pools at once, as
// two replicas starting together. The first migration sleeps, so the runs
// overlap; without the advisory lock both would apply it and one would
// fail (the table exists, the version is recorded). With it, exactly one
// run applies everything and the other finds nothing left.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	ms := []migration{
		{version: 1, name: "0001_slow.sql", sql: `SELECT pg_sleep(0.3); CREATE TABLE t1 (id BIGINT PRIMARY KEY)`},
		{version: 2, name: "0002_more.sql", sql: `CREATE TABLE t2 (id BIGINT PRIMARY KEY); INSERT INTO t1 VALUES (1)`},
	}
	pools := []*pgxpool.Pool{newPool(t, url), newPool(t, url)}
	applied := make([]int, len(pools))
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range pools {
		wg.Go(func() {
			<-start
			applied[i], errs[i] = applyMigrations(t.Context(), p, ms)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if got := []int{min(applied[0], applied[1]), max(applied[0], applied[1])}; !cmp.Equal(got, []int{0, 2}) {
		t.Errorf("applied %v, want one run to apply 2 and the other 0", applied)
	}
	var rows int
	if err := pools[0].QueryRow(t.Context(), `SELECT count(*) FROM t1`).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("t1 has %d rows (err %v), want 1: migration 2 ran once", rows, err)
	}
	// The lock is released: a third run takes it at once and has nothing to do.
	if n, err := applyMigrations(t.Context(), pools[1], ms); err != nil || n != 0 {
		t.Errorf("third run: applied %d, err %v", n, err)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ms := embedded(t)
	newest := ms[len(ms)-1].version
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at, min_reader) VALUES ($1, 0, $1)`, newest+1); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(t.Context(), db.pool); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Migrate on a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if _, err := Open(t.Context(), db.pool.Config().ConnString()); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open on a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

// TestMigrateRunsOnACompatibleNewerSchema: a database migrated by the next
// release, whose migrations declare the previous release may run on them
// (min-reader), opens for a papayd of the previous release, unchanged; one
// whose newest migration does not declare it is refused.
func TestMigrateRunsOnACompatibleNewerSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	pool := newPool(t, url)
	next := []migration{
		{version: 1, name: "0001_a.sql", sql: `CREATE TABLE a (id BIGINT)`, minReader: 1},
		{version: 2, name: "0002_b.sql", sql: `ALTER TABLE a ADD COLUMN b TEXT`, minReader: 1},
		{version: 3, name: "0003_c.sql", sql: `CREATE TABLE c (id BIGINT)`, minReader: 1},
	}
	if n, err := applyMigrations(t.Context(), pool, next); err != nil || n != 3 {
		t.Fatalf("next release: applied %d, err %v; want 3", n, err)
	}
	if n, err := applyMigrations(t.Context(), pool, next[:1]); err != nil || n != 0 {
		t.Errorf("previous release on the compatible schema 3: applied %d, err %v; want 0 and no error", n, err)
	}
	breaking := migration{version: 4, name: "0004_d.sql", sql: `ALTER TABLE a DROP COLUMN b`, minReader: 4}
	if n, err := applyMigrations(t.Context(), pool, append(next, breaking)); err != nil || n != 1 {
		t.Fatalf("breaking release: applied %d, err %v; want 1", n, err)
	}
	for _, known := range [][]migration{next[:1], next} {
		if _, err := applyMigrations(t.Context(), pool, known); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("papayd of schema %d on schema 4 (min-reader 4): err = %v, want ErrSchemaTooNew", len(known), err)
		}
	}
}

func TestMigrateRefusesRecordedGap(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	pool := newPool(t, url)
	ms := []migration{
		{version: 1, name: "0001_a.sql", sql: `CREATE TABLE a (id BIGINT)`},
		{version: 2, name: "0002_b.sql", sql: `CREATE TABLE b (id BIGINT)`},
		{version: 3, name: "0003_c.sql", sql: `CREATE TABLE c (id BIGINT)`},
	}
	if _, err := applyMigrations(t.Context(), pool, ms[:1]); err != nil {
		t.Fatal(err)
	}
	// Version 3 recorded without 2.
	if _, err := pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at, min_reader) VALUES (3, 0, 3)`); err != nil {
		t.Fatal(err)
	}
	n, err := applyMigrations(t.Context(), pool, ms)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("applied %d over a gap, err = %v; want a missing version error", n, err)
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), `SELECT to_regclass('b') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("table b exists: %v (err %v); want nothing applied", exists, err)
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files fstest.MapFS
		ok    bool
	}{
		{"two", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0002_b.sql": {}}, true},
		{"gap", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}}, false},
		{"not from 1", fstest.MapFS{"migrations/0002_b.sql": {}}, false},
		{"bad name", fstest.MapFS{"migrations/1_a.sql": {}}, false},
		{"none", fstest.MapFS{}, false},
		{"min-reader", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0002_b.sql": {Data: []byte("-- min-reader: 1\nSELECT 1")}}, true},
		{"min-reader above itself", fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("-- min-reader: 2\n")}}, false},
		{"min-reader not a number", fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("-- min-reader: one\n")}}, false},
		{"min-reader going back", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0002_b.sql": {},
			"migrations/0003_c.sql": {Data: []byte("-- min-reader: 1\n")}}, false},
	}
	for _, tt := range tests {
		_, err := loadMigrations(tt.files)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	ms := embedded(t)
	if ms[0].version != 1 {
		t.Errorf("embedded migrations start at %d", ms[0].version)
	}
	if ms[1].minReader != 1 {
		t.Errorf("0002_leases.sql: min-reader %d, want 1 (it only adds)", ms[1].minReader)
	}
}
