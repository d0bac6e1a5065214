package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/papayd/papayd/internal/db"
)

// Figure 4's SQLite database reaches 10^7 agreements and 10^7 charges.
// Through internal/db, one row costs tens of µs of CPU, a third of it
// SQLite parsing the INSERT again (a transaction's statements are not
// prepared once), on the single writer; and with every index in place each
// row also updates the random-keyed indexes (openid, out_contract_code,
// transaction_id) at a random page, a page-cache miss at that size. So:
//
//   - rows are still written by internal/db, but into scratch databases,
//     one per core at a time (seedBatch rows each, without the table's
//     indexes), and copied from there into the database in order, by one
//     INSERT ... SELECT of every column but the rowid id (which the
//     database gives, in the same order as inserts through internal/db
//     would): the same column values as internal/db writes;
//   - the table's own indexes are dropped while it is seeded and created
//     again afterwards with the statements sqlite_master kept for them,
//     which are the migrations' CREATE INDEX texts verbatim; the schema is
//     then compared with the one before, text for text.
//
// The copying connection's synchronous=OFF and large cache are the
// bench's; papayd later opens the file with its own pragmas.

// seedIndexCacheKiB is the page cache of the bench's connection that
// copies the rows and recreates the indexes (PRAGMA cache_size, negative:
// KiB).
const seedIndexCacheKiB = 256 << 10

// schemaSQL lists every object of the schema with its SQL text.
const schemaSQL = `SELECT type || ' ' || name || ' ON ' || tbl_name || ': ' || coalesce(sql, '')
FROM sqlite_master ORDER BY type, name`

// tableIndexesSQL lists the indexes of a table that a CREATE INDEX made
// (those of UNIQUE and PRIMARY KEY constraints have no SQL and stay).
const tableIndexesSQL = `SELECT name, sql FROM sqlite_master
WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`

// bulkSeed fills table with rows [from, to), which fill writes through a
// store: on PostgreSQL directly, on SQLite through scratch databases with
// the table's indexes created afterwards.
func (d *database) bulkSeed(ctx context.Context, table string, from, to int, fill func(s seeder, workers, from, to int) error) error {
	if d.cfg.Postgres {
		store, err := d.open(ctx)
		if err != nil {
			return err
		}
		return errors.Join(fill(store, d.seedWorkers(), from, to), store.Close())
	}
	return withoutIndexes(ctx, d.path, table, func(conn *sql.DB) error {
		return copyThrough(ctx, conn, filepath.Dir(d.path), table, from, to, fill)
	})
}

// withoutIndexes runs seed on the SQLite file at path (papayd and every
// other connection closed) with table's CREATE INDEX indexes dropped, then
// creates them again and checks that the schema is what it was. seed gets
// the connection that does all this.
func withoutIndexes(ctx context.Context, path, table string, seed func(*sql.DB) error) error {
	conn, err := openBulk(path)
	if err != nil {
		return err
	}
	defer conn.Close()
	before, err := schema(ctx, conn)
	if err != nil {
		return err
	}
	creates, err := dropIndexes(ctx, conn, table)
	if err != nil {
		return err
	}
	seedErr := seed(conn)
	// One transaction per index: at 10^7 rows all of them at once would
	// hold gigabytes of WAL until the commit.
	for _, c := range creates {
		if err := execAll(ctx, conn, []string{c}); err != nil {
			return errors.Join(seedErr, fmt.Errorf("recreate the indexes of %s: %w", table, err))
		}
	}
	if seedErr != nil {
		return seedErr
	}
	after, err := schema(ctx, conn)
	if err != nil {
		return err
	}
	if a, b := strings.Join(after, "\n"), strings.Join(before, "\n"); a != b {
		return fmt.Errorf("the schema after seeding %s is not the migrated one:\n%s\nwant:\n%s", table, a, b)
	}
	return nil
}

// openBulk opens the bench's one connection to the SQLite file at path.
func openBulk(path string) (*sql.DB, error) {
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)"+
		fmt.Sprintf("&_pragma=cache_size(-%d)", seedIndexCacheKiB))
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1) // the pragmas, and ATTACH, are per connection
	return conn, nil
}

// copyThrough fills table of conn's database with rows [from, to): rounds
// of one scratch database per core, filled at once, then copied in order.
func copyThrough(ctx context.Context, conn *sql.DB, dir, table string, from, to int,
	fill func(s seeder, workers, from, to int) error) error {
	cols, err := copiedColumns(ctx, conn, table)
	if err != nil {
		return err
	}
	workers := runtime.NumCPU()
	// Every core has work even when the rows are fewer than a round.
	batch := min(seedBatch, (to-from+workers-1)/workers)
	for lo := from; lo < to; lo += workers * batch {
		scratch := make([]string, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			a, b := lo+w*batch, min(lo+(w+1)*batch, to)
			if a >= b {
				break
			}
			scratch[w] = filepath.Join(dir, fmt.Sprintf("scratch-%d.db", w))
			wg.Go(func() { errs[w] = fillScratch(ctx, scratch[w], table, a, b, fill) })
		}
		wg.Wait()
		for w, path := range scratch {
			if path == "" {
				continue
			}
			if errs[w] == nil {
				errs[w] = copyRows(ctx, conn, path, table, cols)
			}
			errs[w] = errors.Join(errs[w], removeDB(path))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// fillScratch creates the scratch database at path (migrated by
// internal/db, then without table's indexes) and fills rows [from, to).
func fillScratch(ctx context.Context, path, table string, from, to int, fill func(s seeder, workers, from, to int) error) error {
	store, err := db.Open(ctx, path)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	conn, err := openBulk(path)
	if err != nil {
		return err
	}
	_, err = dropIndexes(ctx, conn, table)
	if err := errors.Join(err, conn.Close()); err != nil {
		return err
	}
	if store, err = db.Open(ctx, path); err != nil {
		return err
	}
	return errors.Join(fill(store, 1, from, to), store.Close())
}

// copiedColumns are table's columns but its INTEGER PRIMARY KEY (the
// rowid), quoted.
func copiedColumns(ctx context.Context, conn *sql.DB, table string) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) WHERE pk = 0 ORDER BY cid", table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return "", err
		}
		cols = append(cols, `"`+c+`"`)
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("table %s has no columns", table)
	}
	return strings.Join(cols, ", "), rows.Err()
}

// copyRows appends the rows of table in the scratch database at path to
// conn's, in the order they were inserted.
func copyRows(ctx context.Context, conn *sql.DB, path, table, cols string) error {
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS scratch", path); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, fmt.Sprintf(`INSERT INTO main."%s" (%s) SELECT %s FROM scratch."%s" ORDER BY id`,
		table, cols, cols, table))
	_, detachErr := conn.ExecContext(ctx, "DETACH DATABASE scratch")
	return errors.Join(err, detachErr)
}

// removeDB removes a SQLite file and its WAL and shared-memory files.
func removeDB(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropIndexes drops table's CREATE INDEX indexes and returns their
// statements.
func dropIndexes(ctx context.Context, conn *sql.DB, table string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, tableIndexesSQL, table)
	if err != nil {
		return nil, err
	}
	var creates, drops []string
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			rows.Close()
			return nil, err
		}
		creates = append(creates, stmt)
		drops = append(drops, `DROP INDEX "`+name+`"`)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	return creates, execAll(ctx, conn, drops)
}

// execAll runs stmts in one transaction.
func execAll(ctx context.Context, conn *sql.DB, stmts []string) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return errors.Join(fmt.Errorf("%s: %w", s, err), tx.Rollback())
		}
	}
	return tx.Commit()
}

// schema is schemaSQL's rows.
func schema(ctx context.Context, conn *sql.DB) ([]string, error) {
	rows, err := conn.QueryContext(ctx, schemaSQL)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
