package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNotFound means no PostgreSQL binaries were found.
var ErrNotFound = errors.New("postgresql binaries not found")

// binEnv names the directory of initdb, pg_ctl and postgres, overriding the search.
const binEnv = "PAPAYD_PG_BIN"

// binaries are the programs a bin directory must hold. Start runs initdb and
// postgres; pg_ctl is required so that a directory is a whole installation.
var binaries = []string{"initdb", "pg_ctl", "postgres"}

// findBin returns the directory of the PostgreSQL binaries: $PAPAYD_PG_BIN if
// set, else the highest version among the directories matching pattern (for
// example /usr/lib/postgresql/*/bin), else the directory of initdb on PATH.
func findBin(pattern string) (string, error) {
	if dir := os.Getenv(binEnv); dir != "" {
		if err := hasBinaries(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", binEnv, dir, err)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob(pattern) // the only error is a malformed pattern
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range dirs {
		if hasBinaries(dir) == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if err := hasBinaries(dir); err != nil {
			return "", fmt.Errorf("initdb on PATH: %w", err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("%w: set %s, or install PostgreSQL (%s, or initdb on PATH)", ErrNotFound, binEnv, pattern)
}

// hasBinaries reports, as an error wrapping ErrNotFound, a program missing from dir.
func hasBinaries(dir string) error {
	for _, name := range binaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: no executable %s in %s", ErrNotFound, name, dir)
		}
	}
	return nil
}

// compareVersions orders "9.6" < "15" < "16.1" by their numeric parts; a
// non-numeric part counts as -1.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		na, nb := -1, -1
		if i < len(pa) {
			if n, err := strconv.Atoi(pa[i]); err == nil {
				na = n
			}
		}
		if i < len(pb) {
			if n, err := strconv.Atoi(pb[i]); err == nil {
				nb = n
			}
		}
		if na != nb {
			return na - nb
		}
	}
	return strings.Compare(a, b)
}
