package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	if os.Getenv("PGTEST_HELPER") == "1" {
		helper()
		return
	}
	os.Exit(Run(m))
}

// startOwn starts a server of the test's own, even when
// PAPAYD_TEST_DATABASE_URL is set, and logs how long Start took.
func startOwn(t *testing.T) *Cluster {
	t.Helper()
	t.Setenv(urlEnv, "")
	begin := time.Now()
	c, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(begin))
	return c
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestStartStop(t *testing.T) {
	c := startOwn(t)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.Stop()
		}
	})
	if !strings.HasPrefix(c.dir, os.TempDir()) {
		t.Errorf("dir %s is not under %s", c.dir, os.TempDir())
	}

	var names [2]string
	t.Run("databases", func(t *testing.T) {
		var urls [2]string
		for i := range urls {
			urls[i] = c.NewDatabase(t.Context(), t)
		}
		a, b := connect(t, urls[0]), connect(t, urls[1])
		for i, conn := range []*pgx.Conn{a, b} {
			if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] || names[0] == "postgres" {
			t.Fatalf("databases %q and %q: want two new ones", names[0], names[1])
		}
		if _, err := a.Exec(t.Context(), "CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := a.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
			t.Fatalf("count in first database = %d, %v; want 1", n, err)
		}
		var reg *string
		if err := b.QueryRow(t.Context(), "SELECT to_regclass('t')::text").Scan(&reg); err != nil {
			t.Fatal(err)
		}
		if reg != nil {
			t.Errorf("second database sees table %s of the first", *reg)
		}
	})

	// The subtest's cleanups dropped both databases.
	admin := connect(t, c.URL())
	var left int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names[:]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of databases %v left after the test", left, names)
	}
	// Only loopback and the private socket.
	var listen, sockets string
	if err := admin.QueryRow(t.Context(), "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')").Scan(&listen, &sockets); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" || sockets != c.dir {
		t.Errorf("listen_addresses %q, unix_socket_directories %q; want 127.0.0.1, %s", listen, sockets, c.dir)
	}
	u, err := url.Parse(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	sock := connect(t, "postgres:///postgres?user=postgres&host="+c.dir+"&port="+u.Port())
	if err := sock.Ping(t.Context()); err != nil {
		t.Errorf("unix socket: %v", err)
	}
	admin.Close(t.Context())
	sock.Close(t.Context())

	pm := c.proc.Pid
	pids := append(childPIDs(pm), pm)
	key, shm := shmOf(filepath.Join(c.dir, "data"))
	if len(pids) < 3 {
		t.Fatalf("postmaster %d has children %v; want its background processes", pm, pids[:len(pids)-1])
	}
	begin := time.Now()
	err = c.Stop()
	stopped = true
	t.Logf("Stop took %v", time.Since(begin))
	if err != nil {
		t.Fatal(err)
	}
	checkGone(t, c.dir, pids)
	checkNoShm(t, key, shm)
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// checkGone fails t if any of pids runs or dir exists or a process names dir.
func checkGone(t *testing.T, dir string, pids []int) {
	t.Helper()
	for _, p := range pids {
		if _, err := processStart(p); err == nil {
			t.Errorf("process %d (%s) still runs", p, commandLine(p))
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s: %v; want it removed", dir, err)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil && strings.Contains(commandLine(p), dir) {
			t.Errorf("process %d still names %s: %s", p, dir, commandLine(p))
		}
	}
}

// TestDurable: a Durable server flushes its commits; the default one does
// not.
func TestDurable(t *testing.T) {
	t.Setenv(urlEnv, "")
	for _, tc := range []struct {
		opts []Option
		want string
	}{{nil, "off"}, {[]Option{Durable()}, "on"}} {
		c, err := Start(t.Context(), tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var fsync, sync, fpw string
		err = connect(t, c.URL()).QueryRow(t.Context(),
			"SELECT current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')").Scan(&fsync, &sync, &fpw)
		c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if fsync != tc.want || sync != tc.want || fpw != tc.want {
			t.Errorf("%d options: fsync %s, synchronous_commit %s, full_page_writes %s; want all %s", len(tc.opts), fsync, sync, fpw, tc.want)
		}
	}
}

func TestStopAfterExit(t *testing.T) {
	c := startOwn(t)
	// A server that died on its own: Stop still removes the directory and
	// the shared memory the postmaster could not remove.
	pids := append(childPIDs(c.proc.Pid), c.proc.Pid)
	key, shm := shmOf(filepath.Join(c.dir, "data"))
	if err := c.proc.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.exited
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(pids, 5*time.Second) // the children exit on seeing the postmaster gone
	checkGone(t, c.dir, pids)
	checkNoShm(t, key, shm)
}

func TestShared(t *testing.T) {
	c := Shared(t)
	if Shared(t) != c {
		t.Fatal("Shared returned two clusters")
	}
	conn := connect(t, c.NewDatabase(t.Context(), t))
	var one int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

func TestExternalURL(t *testing.T) {
	server := Shared(t)
	t.Setenv(urlEnv, server.URL())
	c, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != server.URL() || c.dir != "" {
		t.Fatalf("Start with %s started a server: URL %s, dir %q", urlEnv, c.URL(), c.dir)
	}
	var name string
	t.Run("database", func(t *testing.T) {
		u := c.NewDatabase(t.Context(), t)
		if err := connect(t, u).QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, server.URL()).QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatalf("server after Stop of the external cluster: %v", err)
	}
	if n != 0 {
		t.Errorf("database %s left on the external server", name)
	}
}

func TestStartNoBinaries(t *testing.T) {
	t.Setenv(urlEnv, "")
	t.Setenv(binEnv, t.TempDir())
	_, err := Start(t.Context())
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start = %v; want ErrNotFound", err)
	}
}

func TestFindBin(t *testing.T) {
	root := t.TempDir()
	mk := func(version string, names ...string) string {
		dir := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mk("9.6", binaries...)
	want := mk("15", binaries...)
	mk("16", "initdb", "pg_ctl") // no postgres: not a whole installation
	mk("main", binaries...)
	t.Setenv(binEnv, "")
	t.Setenv("PATH", "")
	pattern := filepath.Join(root, "*", "bin")
	if got, err := findBin(pattern); err != nil || got != want {
		t.Errorf("findBin = %q, %v; want %q", got, err, want)
	}

	empty := filepath.Join(t.TempDir(), "*", "bin")
	if _, err := findBin(empty); !errors.Is(err, ErrNotFound) {
		t.Errorf("findBin(nothing installed) = %v; want ErrNotFound", err)
	}
	onPath := mk("path", binaries...)
	t.Setenv("PATH", onPath)
	if got, err := findBin(empty); err != nil || got != onPath {
		t.Errorf("findBin(PATH) = %q, %v; want %q", got, err, onPath)
	}
	t.Setenv(binEnv, mk("17", "initdb"))
	if _, err := findBin(pattern); !errors.Is(err, ErrNotFound) {
		t.Errorf("findBin(%s without postgres) = %v; want ErrNotFound", binEnv, err)
	}
}

// helper, run in a child test process, starts a server, prints its
// directory and postmaster pid, and waits to be killed.
func helper() {
	c, err := Start(context.Background())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(c.dir, c.proc.Pid)
	select {}
}

func TestKilledOwner(t *testing.T) {
	t.Setenv(urlEnv, "")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PGTEST_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	var dir string
	var pm int
	if _, err := fmt.Sscan(line, &dir, &pm); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q: %v", line, err)
	}
	pids := append(childPIDs(pm), pm)
	key, shm := shmOf(filepath.Join(dir, "data"))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The parent-death signal kills the postmaster; its children follow.
	waitGone(pids, 10*time.Second)
	for _, p := range pids {
		if _, err := processStart(p); err == nil {
			t.Errorf("process %d (%s) outlived its test binary", p, commandLine(p))
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("directory of the killed binary: %v; want it there until reaped", err)
	}
	if alive, ok := ownerAlive(dir); alive || !ok {
		t.Fatalf("owner of %s: alive %v, recorded %v; want recorded and dead", dir, alive, ok)
	}
	reapStale(os.TempDir())
	checkGone(t, dir, pids)
	checkNoShm(t, key, shm)
}

// checkNoShm fails t if the System V shared memory segment id with key exists.
func checkNoShm(t *testing.T, key, id int) {
	t.Helper()
	if id < 0 {
		t.Fatal("no shared memory segment recorded in postmaster.pid")
	}
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == strconv.Itoa(key) && f[1] == strconv.Itoa(id) {
			t.Errorf("shared memory segment %d (key %d) left: %s", id, key, l)
		}
	}
}

func TestStartCanceled(t *testing.T) {
	t.Setenv(urlEnv, "")
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if c, err := Start(ctx); !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Stop()
		}
		t.Fatalf("Start(canceled) = %v; want context.Canceled", err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range after {
		if !slices.Contains(before, d) {
			t.Errorf("Start(canceled) left %s", d)
		}
	}
}
