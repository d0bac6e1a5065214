package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql for the callback check on PostgreSQL

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/postgres"
	"github.com/papayd/papayd/internal/service"
)

// A storeConfig is one way of running papayd that the bench measures:
// SQLite in the data directory (one process), or PostgreSQL shared by
// Replicas processes.
type storeConfig struct {
	Postgres bool
	Replicas int
	NoCache  bool // SQLite with PAPAYD_RECORD_CACHE=0
}

// Name is how the report names the configuration.
func (c storeConfig) Name() string {
	switch {
	case c.Postgres && c.Replicas == 1:
		return "PostgreSQL, 1 replica"
	case c.Postgres:
		return fmt.Sprintf("PostgreSQL, %d replicas", c.Replicas)
	case c.NoCache:
		return "SQLite, record cache off"
	}
	return "SQLite"
}

// figures are the figures a configuration other than SQLite runs: 1 to 4
// on PostgreSQL, and the reads (3) on SQLite without its record cache.
func (c storeConfig) figures() []int {
	if c.NoCache {
		return []int{3}
	}
	return []int{1, 2, 3, 4}
}

// parseStores reads -stores and -replicas into the configurations to run:
// SQLite first (the main report), then SQLite without its cache when
// sqlite-nocache is named, then PostgreSQL with each replica count.
func parseStores(stores, replicas string) ([]storeConfig, error) {
	var counts []int
	for s := range strings.SplitSeq(replicas, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 8 {
			return nil, fmt.Errorf("-replicas: %q is not a count from 1 to 8", s)
		}
		counts = append(counts, n)
	}
	seen := map[string]bool{}
	for s := range strings.SplitSeq(stores, ",") {
		s = strings.TrimSpace(s)
		if s != "sqlite" && s != "sqlite-nocache" && s != "postgres" {
			return nil, fmt.Errorf("-stores: %q is not sqlite, sqlite-nocache or postgres", s)
		}
		seen[s] = true
	}
	var out []storeConfig
	if seen["sqlite"] {
		out = append(out, storeConfig{Replicas: 1})
	}
	if seen["sqlite-nocache"] {
		out = append(out, storeConfig{Replicas: 1, NoCache: true})
	}
	if seen["postgres"] {
		for _, n := range counts {
			out = append(out, storeConfig{Postgres: true, Replicas: n})
		}
	}
	return out, nil
}

// seeder is what seeding needs of a store: both internal/db and
// internal/postgres implement it.
type seeder interface {
	InTx(ctx context.Context, fn func(service.Tx) error) error
	Close() error
}

// database is one database of a configuration, in dir: a SQLite file, or
// a PostgreSQL database on the bench's cluster.
type database struct {
	cfg  storeConfig
	name string // PostgreSQL's database name, unique on the cluster
	dir  string // SQLite's file; papayd's data directories (logs) under it
	url  string // PostgreSQL's database
	path string // SQLite's file
}

// newDatabase creates the empty database of cfg named name: dir/papayd.db,
// or a fresh database on pg.
func newDatabase(ctx context.Context, cfg storeConfig, pg *pgServer, dir, name string) (*database, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	d := &database{cfg: cfg, name: name, dir: dir, path: filepath.Join(dir, "papayd.db")}
	if cfg.Postgres {
		u, err := pg.createDatabase(ctx, name)
		if err != nil {
			return nil, err
		}
		d.url = u
	}
	s, err := d.open(ctx) // the migrated, empty schema
	if err != nil {
		return nil, err
	}
	return d, s.Close()
}

// open opens the database to seed it (papayd is not running on it).
func (d *database) open(ctx context.Context) (seeder, error) {
	if d.cfg.Postgres {
		return postgres.Open(ctx, d.url)
	}
	return db.Open(ctx, d.path)
}

// seedWorkers is how many transactions seed at once: SQLite has one
// writer; PostgreSQL's inserts wait on round trips, so several overlap.
func (d *database) seedWorkers() int {
	if d.cfg.Postgres {
		return 4
	}
	return 1
}

// size is the bytes the database takes: SQLite's file and WAL after a
// TRUNCATE checkpoint (the store closed), PostgreSQL's pg_database_size.
func (d *database) size(ctx context.Context) (int64, error) {
	if !d.cfg.Postgres {
		return checkpoint(d.path)
	}
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// check opens the database read-only for the callback check.
func (d *database) check() (*sql.DB, error) {
	if d.cfg.Postgres {
		return sql.Open("pgx", d.url)
	}
	return openReadOnly(d.path)
}

// start starts the configuration's papayd processes on the database, each
// with its own data directory (its log) and ports, PostgreSQL replicas
// with distinct PAPAYD_REPLICA names.
func (d *database) start(bin string, env map[string]string) (fleet, error) {
	var f fleet
	for r := range d.cfg.Replicas {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		dir := d.dir
		if d.cfg.Postgres {
			dir = filepath.Join(d.dir, fmt.Sprintf("replica-%d", r+1))
			if err := os.MkdirAll(dir, 0o750); err != nil {
				f.stop()
				return nil, err
			}
			e["PAPAYD_DATABASE_URL"] = d.url
			e["PAPAYD_REPLICA"] = fmt.Sprintf("bench-%d", r+1)
		}
		if d.cfg.NoCache {
			e["PAPAYD_RECORD_CACHE"] = "0"
		}
		p, err := startPapayd(bin, dir, e)
		if err != nil {
			f.stop()
			return nil, err
		}
		f = append(f, p)
	}
	return f, nil
}

// fleet is the papayd processes of one configuration: one on SQLite, one
// or more replicas on PostgreSQL. Loads split their calls between them.
type fleet []*papayd

// pick is the process of call i: calls alternate between the replicas.
func (f fleet) pick(i int) *papayd { return f[i%len(f)] }

func (f fleet) pids() []int {
	out := make([]int, len(f))
	for i, p := range f {
		out[i] = p.pid()
	}
	return out
}

// stop stops every process and returns the first failure.
func (f fleet) stop() error {
	var errs []error
	for _, p := range f {
		errs = append(errs, p.stop())
	}
	return errors.Join(errs...)
}

// scrape sums the named series over the processes.
func (f fleet) scrape(series ...string) []float64 {
	out := make([]float64, len(series))
	for _, p := range f {
		for i, v := range scrape(p, series...) {
			out[i] += v
		}
	}
	return out
}

// pgServer is the bench's throwaway PostgreSQL cluster (internal/pgtest).
type pgServer struct {
	cluster    *pgtest.Cluster
	postmaster int // pid of the server's postmaster (0: not found)
}

// startPostgres starts the cluster, durable (see storesSection).
func startPostgres(ctx context.Context) (*pgServer, error) {
	c, err := pgtest.Start(ctx, pgtest.Durable())
	if err != nil {
		return nil, err
	}
	return &pgServer{cluster: c, postmaster: c.PID()}, nil
}

// stop stops the cluster and removes its directory.
func (s *pgServer) stop() error {
	if s == nil {
		return nil
	}
	return s.cluster.Stop()
}

// copyTo copies d, while no papayd runs on it, into a new database named
// after it with suffix: the SQLite file (and its WAL) into the directory
// suffix under d's, or, on PostgreSQL, a database made with d's as its
// template.
func (d *database) copyTo(ctx context.Context, pg *pgServer, suffix string) (*database, error) {
	c := &database{cfg: d.cfg, name: d.name + "_" + suffix, dir: filepath.Join(d.dir, suffix)}
	c.path = filepath.Join(c.dir, "papayd.db")
	if err := os.MkdirAll(c.dir, 0o750); err != nil {
		return nil, err
	}
	if d.cfg.Postgres {
		u, err := pg.createDatabaseFrom(ctx, c.name, d.name)
		c.url = u
		return c, err
	}
	for _, ext := range []string{"", "-wal"} {
		if err := copyFile(d.path+ext, c.path+ext); err != nil && !(ext != "" && errors.Is(err, fs.ErrNotExist)) {
			return nil, err
		}
	}
	return c, nil
}

// copyFile copies the file from to the new file to.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// createDatabase creates database name on the cluster and returns its URL.
func (s *pgServer) createDatabase(ctx context.Context, name string) (string, error) {
	return s.createDatabaseFrom(ctx, name, "")
}

// createDatabaseFrom creates database name on the cluster as a copy of
// database template ("": an empty one) and returns its URL.
func (s *pgServer) createDatabaseFrom(ctx context.Context, name, template string) (string, error) {
	conn, err := pgx.Connect(ctx, s.cluster.URL())
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(s.cluster.URL())
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// cpu is the CPU time the cluster's processes used so far: the
// postmaster's own and that of its children it reaped (backends that
// ended), plus that of its living children.
func (s *pgServer) cpu() time.Duration {
	if s == nil || s.postmaster == 0 {
		return 0
	}
	st, ok := readStat(s.postmaster)
	if !ok {
		return 0
	}
	total := st.own + st.children
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, ok := readStat(pid); ok && c.ppid == s.postmaster {
			total += c.own
		}
	}
	return total
}

// logLine is the first line of the processes' logs that holds s ("" when
// none does).
func (f fleet) logLine(s string) string {
	for _, p := range f {
		b, _ := os.ReadFile(p.log.Name())
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, s) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}
