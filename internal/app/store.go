package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/postgres"
	"github.com/papayd/papayd/internal/service"
)

// store is the store as papayd wires it: service.Store, and what the app
// needs of either implementation besides.
type store interface {
	service.Store
	// ClaimIdentity binds the database to a mode and sp_mchid on first use
	// and refuses another's.
	ClaimIdentity(ctx context.Context, mode, spMchID string) error
	// RecordWeChatCall queues the audit row of a WeChat call.
	RecordWeChatCall(ctx context.Context, c service.WeChatCall, failed func(error)) error
	// ObserveEvents reports the types of the events of each commit.
	ObserveEvents(fn func(types []service.EventType))
	// Stats counts the records by state (papayd_records).
	Stats(ctx context.Context) (db.Stats, error)
	Close() error
}

// usesPostgres reports whether cfg names a PostgreSQL database.
func (c Config) usesPostgres() bool { return c.DatabaseURL != "" }

// checkDatabaseURL refuses a PAPAYD_DATABASE_URL that is not postgres://.
func checkDatabaseURL(url string) error {
	if url == "" || strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return nil
	}
	return errors.New("PAPAYD_DATABASE_URL must be a postgres:// or postgresql:// URL (empty: SQLite in PAPAYD_DATA_DIR)")
}

// openStore opens PAPAYD_DATABASE_URL's PostgreSQL database, or the SQLite
// database in the data directory, and applies its migrations.
func openStore(ctx context.Context, cfg Config, cacheRecords int) (store, error) {
	if cfg.usesPostgres() {
		pg, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL (PAPAYD_DATABASE_URL): %w", err)
		}
		return pgStore{pg}, nil
	}
	s, err := db.OpenWith(ctx, filepath.Join(cfg.DataDir, "papayd.db"), db.Options{CacheRecords: cacheRecords})
	if err != nil {
		return nil, err
	}
	return s, nil
}

var _ store = (*db.DB)(nil)

// pgStore is the PostgreSQL store; its record counts are papayd_records'.
type pgStore struct{ *postgres.DB }

var _ store = pgStore{}

func (s pgStore) Stats(ctx context.Context) (db.Stats, error) {
	st, err := s.DB.Stats(ctx)
	return db.Stats(st), err
}

// sandboxLockWait is how long a sandbox papayd on PostgreSQL waits for
// another to let the database go.
const sandboxLockWait = 2 * time.Second

// lockSandbox refuses a second papayd in sandbox mode on one PostgreSQL
// database: the simulated WeChat Pay lives in the process, so two would
// each hold half of the contracts and orders. It returns the lock's
// release, held for the life of the process.
func lockSandbox(ctx context.Context, s store, spMchID string) (func(), error) {
	wctx, cancel := context.WithTimeout(ctx, sandboxLockWait)
	defer cancel()
	unlock, err := s.LockKey(wctx, "sandbox/"+spMchID)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, errors.New("another papayd in sandbox mode uses this PostgreSQL database: sandbox mode runs one replica " +
				"(its simulated WeChat Pay lives in the process); run replicas in live mode")
		}
		return nil, err
	}
	return unlock, nil
}

// replicaName is name, or when empty the host name, the process id and a
// random suffix: unique among the replicas, and telling in the leases.
func replicaName(name string) string {
	if name != "" {
		return name
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "papayd"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), rand.Text()[:6])
}

// reader reads a database for the commands that change nothing (papayd
// audit, papayd verify).
type reader interface {
	service.Records
	ListAuditEntries(ctx context.Context, f service.AuditFilter) ([]service.AuditEntry, string, error)
	CheckIdentity(ctx context.Context, mode, spMchID string) error
	Close() error
}

// openReader opens cfg's database to read it: the SQLite file read-only,
// never created nor migrated; a PostgreSQL database as a replica would
// (its migrations are applied: they are compatible with the release
// before).
func openReader(ctx context.Context, cfg Config) (reader, error) {
	if cfg.usesPostgres() {
		pg, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("PostgreSQL (PAPAYD_DATABASE_URL): %w", err)
		}
		return pg, nil
	}
	r, err := db.OpenReader(ctx, filepath.Join(cfg.DataDir, "papayd.db"))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Migrate applies the migrations of cfg's database (PostgreSQL's under
// its advisory lock, so replicas starting at once do not race) and
// reports it to out. papayd applies them at start too; this runs them
// alone, before a rolling upgrade.
func Migrate(ctx context.Context, cfg Config, out io.Writer) error {
	s, err := openStore(ctx, cfg, 0)
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	where := filepath.Join(cfg.DataDir, "papayd.db")
	if cfg.usesPostgres() {
		where = "the PostgreSQL database"
	}
	_, err = fmt.Fprintf(out, "papayd: %s is migrated\n", where)
	return err
}
