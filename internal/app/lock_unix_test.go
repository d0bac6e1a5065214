//go:build unix

package app

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDataDirectoryIsOwnerOnly: an existing data directory readable by
// others is tightened to 0700; a new one is created so.
func TestDataDirectoryIsOwnerOnly(t *testing.T) {
	t.Parallel()
	for _, existing := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "data")
		if existing {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		unlock, err := lockDataDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		unlock()
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("existing %v: mode %v (%v), want 0700", existing, fi.Mode().Perm(), err)
		}
	}
}
