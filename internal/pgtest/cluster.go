package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// urlEnv names an existing server to use instead of starting one.
const urlEnv = "PAPAYD_TEST_DATABASE_URL"

// binGlob is where Debian and Ubuntu install each PostgreSQL version.
const binGlob = "/usr/lib/postgresql/*/bin"

// dirPrefix begins the name of each cluster's directory under os.TempDir.
const dirPrefix = "papayd-pgtest-"

// stopWait bounds the fast shutdown in Stop before the server is killed.
const stopWait = 10 * time.Second

// A Cluster is a PostgreSQL server for tests: one Start started, or the one
// PAPAYD_TEST_DATABASE_URL names. Its methods are safe for concurrent use.
type Cluster struct {
	url string // the superuser's URL of the postgres database

	// Set only when Start started the server.
	dir    string        // the directory: owner file, log, socket, data/
	proc   *os.Process   // the postmaster
	exited chan struct{} // closed when the postmaster has exited
	waited error         // the postmaster's exit, once exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Option changes the settings of a server Start starts.
type Option func(*options)

type options struct{ durable bool }

// Durable starts a server whose commits survive a crash of the machine, as
// a production server's do: fsync, synchronous_commit and full_page_writes
// on, shared_buffers 128MB. The benchmark compares PostgreSQL with SQLite's
// fsynced commits on such a server.
func Durable() Option { return func(o *options) { o.durable = true } }

// Start starts a throwaway server and returns when it accepts connections, or
// returns the Cluster for PAPAYD_TEST_DATABASE_URL without starting anything.
// The caller must call Stop. A server is tuned for speed unless Durable is
// given: fsync, synchronous_commit and full_page_writes off, shared_buffers
// 16MB. Start first removes the clusters of earlier test processes that are
// gone. An error wraps ErrNotFound when the binaries are missing.
func Start(ctx context.Context, opts ...Option) (*Cluster, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if u := os.Getenv(urlEnv); u != "" {
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("pgtest: %s: %w", urlEnv, err)
		}
		return &Cluster{url: u}, nil
	}
	if !supported {
		return nil, fmt.Errorf("pgtest: starting a server needs Linux here; set %s", urlEnv)
	}
	bin, err := findBin(binGlob)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	reapStale(os.TempDir())

	var uid, gid uint32
	asPostgres := os.Geteuid() == 0
	if asPostgres {
		if uid, gid, err = lookupUser("postgres"); err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if asPostgres {
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	// run prepares a program; ctx ends it (the server gets a context that
	// never ends: Stop ends it).
	run := func(ctx context.Context, name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		cmd.SysProcAttr = sysProcAttr(uid, gid, asPostgres)
		return cmd
	}
	data := filepath.Join(dir, "data")
	initdb := run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// A free port can be taken between the probe and the server's bind: retry.
	for attempt := 1; ; attempt++ {
		err = c.serve(ctx, run, data, o.settings())
		if err == nil {
			return c, nil
		}
		if attempt == 3 || ctx.Err() != nil || !c.bindFailed() {
			c.Stop()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
}

// settings are the server's -c settings that Durable changes.
func (o options) settings() []string {
	if o.durable {
		return []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on", "shared_buffers=128MB"}
	}
	return []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off", "shared_buffers=16MB"}
}

// serve starts postgres on a free port, with the settings given besides its
// own, and waits until it accepts connections.
func (c *Cluster) serve(ctx context.Context, run func(context.Context, string, ...string) *exec.Cmd, data string, settings []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(c.dir, "postgres.log"))
	if err != nil {
		return err
	}
	defer logf.Close() // the server holds its own descriptor
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=200",
		"-c", "max_wal_senders=0",
		"-c", "wal_level=minimal",
	}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := run(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	started := make(chan error, 1)
	exited := make(chan struct{})
	c.exited = exited
	go func() {
		// The parent-death signal follows the thread that forked: keep it
		// alive, and this goroutine on it, until the server exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		c.proc = cmd.Process
		started <- nil
		c.waited = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)

	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(data) {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited: %v\n%s", c.waited, c.log())
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("postgres not ready after 60s\n%s", c.log())
		case <-tick.C:
		}
	}
}

// ready reports whether the postmaster.pid in data says the server accepts
// connections, as pg_ctl reads it.
func ready(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready"
}

// bindFailed reports whether the server exited for want of its port.
func (c *Cluster) bindFailed() bool {
	select {
	case <-c.exited:
		return strings.Contains(c.log(), "could not bind")
	default:
		return false
	}
}

// log returns the server's log.
func (c *Cluster) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(b)
}

// URL returns the superuser's URL of the server's postgres database.
func (c *Cluster) URL() string { return c.url }

// PID is the postmaster's process id; 0 for the server of
// PAPAYD_TEST_DATABASE_URL, which Start did not start.
func (c *Cluster) PID() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// Stop shuts a started server down (a fast shutdown, killed after 10s) and
// removes its directory. It does nothing for PAPAYD_TEST_DATABASE_URL's
// server. Calls after the first return the first's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.dir == "" {
			return
		}
		c.stopErr = c.stop()
		if err := os.RemoveAll(c.dir); err != nil && c.stopErr == nil {
			c.stopErr = fmt.Errorf("pgtest: %w", err)
		}
	})
	return c.stopErr
}

// stop ends the postmaster and waits for it: SIGINT is PostgreSQL's fast
// shutdown (what pg_ctl stop -m fast sends), after which the postmaster waits
// for its children and removes its shared memory. A postmaster that does not
// stop in time is killed, and so are its children; the shared memory of a
// killed server (or one that died before Stop) is removed here.
func (c *Cluster) stop() error {
	if c.proc == nil {
		return nil
	}
	key, shm := shmOf(filepath.Join(c.dir, "data"))
	defer removeShm(key, shm, 5*time.Second)
	select {
	case <-c.exited:
		return nil
	default:
	}
	_ = c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopWait):
	}
	kids := childPIDs(c.proc.Pid)
	_ = c.proc.Kill()
	<-c.exited
	killAll(kids)
	waitGone(kids, 5*time.Second)
	return fmt.Errorf("pgtest: postgres did not stop within %v; killed", stopWait)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookupUser returns the uid and gid of the named user.
func lookupUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	return uint32(id), uint32(g), nil
}
