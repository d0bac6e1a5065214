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
	"time"

	"github.com/papayd/papayd/internal/service"
)

var _ service.Store = (*DB)(nil)

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	reader         // reads outside a transaction, on the read pool
	path   string  // the database file, for Backup's own connection
	write  *sql.DB // exactly one connection: every write transaction
	read   *sql.DB // read-only pool
	writer *writer // runs write transactions on write, in batches

	readStmts *stmtQuerier // prepared statements of the read pool
	caches    *caches      // recently read records (cache.go)
	leases    *leases      // the leases of this process (lease.go)
}

// dsnPragmas are applied by the driver to every connection it opens.
// _txlock=immediate makes BeginTx take the write lock at once, so a
// transaction never fails upgrading from read to write.
const dsnPragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_txlock=immediate"

// readOnlyPragma is added for the read pool, so a write cannot slip past
// the single writer connection.
const readOnlyPragma = "&_pragma=query_only(1)"

// uriEscaper escapes the characters that would end the path of a file: URI.
var uriEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// dsn returns the modernc.org/sqlite data source name for the file at path.
func dsn(path string) string {
	return "file:" + uriEscaper.Replace(path) + "?" + dsnPragmas
}

// roPragmas are those of a read-only connection to an existing file
// (BackupFile's): mode=ro neither creates the file nor writes to it, and
// such a connection cannot set journal_mode. synchronous(FULL) is what the
// copy VACUUM INTO writes inherits.
const roPragmas = "mode=ro&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)"

// roDSN returns the data source name of a read-only connection to the
// existing database file at path.
func roDSN(path string) string {
	return "file:" + uriEscaper.Replace(path) + "?" + roPragmas
}

// Options tune a DB.
type Options struct {
	// CacheRecords bounds the record cache of agreements and of charges
	// (each); 0 turns it off.
	CacheRecords int
}

// Open opens (creating if needed) the database file at path, creating its
// parent directory, and migrates it, with the default options. It fails
// with ErrSchemaTooNew when the file was migrated by a newer papayd.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{CacheRecords: DefaultCacheRecords})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open database: %q is not a file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := ownerOnly(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db, err := open(ctx, path, o)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

func open(ctx context.Context, path string, o Options) (_ *DB, err error) {
	useFdatasync()
	db := &DB{path: path, caches: newCaches(o.CacheRecords), leases: &leases{}}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()

	db.write, err = sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, err
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxIdleTime(0)
	db.write.SetConnMaxLifetime(0)
	if err := migrate(ctx, db.write); err != nil {
		return nil, err
	}
	var through int64
	if err := db.write.QueryRowContext(ctx, maxEventSequenceSQL).Scan(&through); err != nil {
		return nil, err
	}
	db.writer = newWriter(db.write, db.caches, newEvents(uint64(through)))

	// The read pool opens after the migrations, when the file is in WAL
	// mode, so its journal_mode pragma changes nothing.
	db.read, err = sql.Open("sqlite", dsn(path)+readOnlyPragma)
	if err != nil {
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		return nil, err
	}
	db.readStmts = newStmtQuerier(db.read)
	db.reader = reader{q: db.readStmts}
	return db, nil
}

// ownerOnly makes the database file at path, and its -wal and -shm files
// where they exist, readable by their owner only: they hold decrypted
// notifications, openids included. A missing database file is created
// empty with that mode, so that SQLite, which gives its -wal and -shm files
// the database file's permissions, never creates them readable by others.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// LastCommitFailure is when a write transaction last failed to commit (a
// full disk, an I/O error), and why; the zero time if none did.
func (db *DB) LastCommitFailure() (time.Time, error) {
	at := db.writer.failedAt.Load()
	if at == 0 {
		return time.Time{}, nil
	}
	var err error
	if p := db.writer.failedErr.Load(); p != nil {
		err = *p
	}
	return time.Unix(0, at), err
}

// Close closes both pools. Call it after every user of db has returned.
func (db *DB) Close() error {
	if db.writer != nil {
		db.writer.close()
	}
	if db.readStmts != nil {
		db.readStmts.close()
	}
	var errs []error
	for _, p := range []*sql.DB{db.read, db.write} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// ObserveCommits has fn told, after every group commit, how many write
// transactions it carried and how long it took (BEGIN to the end of
// COMMIT, fsync included). fn runs on the writer and must not block.
func (db *DB) ObserveCommits(fn func(transactions int, took time.Duration)) {
	db.writer.observe.Store(&fn)
}

// Ping reports whether both the writer and the read pool answer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database writer: %w", err)
	}
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database readers: %w", err)
	}
	return nil
}
