// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// Start runs initdb and postgres in a fresh directory under os.TempDir, on
// 127.0.0.1 at a free port, with the unix socket in that directory. The server
// is tuned for tests, not for data: fsync, synchronous_commit and
// full_page_writes are off (a crash of the machine loses the cluster, which is
// thrown away anyway), and shared_buffers is small. Authentication is trust,
// and the server is reachable only from this machine (loopback and its private
// socket). NewDatabase gives each test its own database, dropped when the test
// ends; Stop shuts the server down and removes the directory.
//
// When PAPAYD_TEST_DATABASE_URL is set, Start starts nothing: the Cluster
// stands for that server, and NewDatabase creates (and drops) databases on it.
//
// The binaries come from PAPAYD_PG_BIN if set, else from the highest
// /usr/lib/postgresql/*/bin that holds initdb, pg_ctl and postgres, else from
// PATH. When none is found Start returns an error wrapping ErrNotFound; tests
// that need PostgreSQL should fail with it, not skip.
//
// PostgreSQL refuses to run as root. When the test runs as root, initdb and
// postgres run as the "postgres" user (through exec credentials, the same
// switch runuser makes), on a directory chowned to that user.
//
// # Nothing outlives the test binary
//
// A test binary shares one server through Run and Shared:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		url := pgtest.Shared(t).NewDatabase(context.Background(), t)
//		...
//	}
//
// Run stops the server after the tests. If the binary dies before that (a
// panicking test, the -timeout panic, a signal, SIGKILL), the kernel kills the
// postmaster with it: postgres is a direct child started with a parent-death
// signal (Linux), and its own children exit when they see the postmaster gone.
// What such a death leaves is the directory and the server's small System V
// shared memory segment; the next Start on the machine reaps them: each
// directory records the pid (and start time) of the test process that owns
// it, and a directory whose owner is gone is cleaned (any process still
// serving it killed, the segment removed, the directory deleted). The
// processes of a killed server are reparented to init, which reaps them.
//
// Starting a server needs Linux (the parent-death signal, /proc); elsewhere
// Start returns an error unless PAPAYD_TEST_DATABASE_URL is set.
package pgtest
