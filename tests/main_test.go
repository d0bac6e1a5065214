package tests

import (
	"flag"
	"os"
	"testing"

	"github.com/papayd/papayd/internal/pgtest"
)

// TestMain runs the end-to-end tests 4 at a time unless -parallel is
// given: they spend much of their time waiting (for the simulator's
// notifications, the reconciler, deadlines), so the default of GOMAXPROCS
// (2 on the CI machines) leaves the cores idle. More than 4 at once under
// the race detector starves the timing-bound ones. pgtest.Run stops the
// PostgreSQL server the replica tests share (pgtest.Shared) after them.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(pgtest.Run(m))
}
