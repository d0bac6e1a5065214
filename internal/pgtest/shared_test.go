package pgtest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// fatalTB records Fatal instead of failing the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestSharedNeedsRun(t *testing.T) {
	shared.mu.Lock()
	shared.running = false
	shared.mu.Unlock()
	t.Cleanup(func() {
		shared.mu.Lock()
		shared.running = true
		shared.mu.Unlock()
	})
	tb := &fatalTB{TB: t}
	done := make(chan *Cluster)
	go func() {
		defer close(done)
		done <- Shared(tb)
	}()
	if c := <-done; c != nil {
		t.Fatal("Shared without Run returned a cluster")
	}
	if !strings.Contains(tb.msg, "pgtest.Run") {
		t.Errorf("Shared without Run failed with %q; want it to name pgtest.Run", tb.msg)
	}
}
