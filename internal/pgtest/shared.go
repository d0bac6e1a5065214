package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the test binary's Cluster, started by the first Shared call.
var shared struct {
	mu      sync.Mutex
	running bool // Run is running the tests
	c       *Cluster
	err     error // Start's error, given to every later Shared call
}

// Run runs the tests of m and then stops the Cluster Shared started, if any;
// it returns the exit code for os.Exit, failing when the tests passed but the
// server could not be stopped cleanly. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
func Run(m *testing.M) int {
	shared.mu.Lock()
	shared.running = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.running = false
	if shared.c != nil {
		if err := shared.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.c = nil
	}
	return code
}

// Shared returns the test binary's Cluster, starting it on the first call.
// It fails t when the server cannot be started (every later call fails with
// the same error) and when the binary's TestMain does not call Run, which
// stops the server.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.running {
		t.Fatal("pgtest: Shared needs TestMain to call pgtest.Run")
	}
	if shared.c == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = Start(ctx)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}
