package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupCommandMissingDataDir: `papayd backup` with a data directory
// that does not exist (a typo) fails with exit status 1 and a message
// naming the database file, and creates neither the directory nor the
// copy.
func TestBackupCommandMissingDataDir(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "papayd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "papayd-dta")
	dst := filepath.Join(t.TempDir(), "copy.db")
	cmd := exec.Command(bin, "backup", dst)
	cmd.Env = append(os.Environ(), "PAPAYD_DATA_DIR="+dataDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("papayd backup from a missing data directory: %v, want exit status 1\n%s", err, stderr.Bytes())
	}
	if src := filepath.Join(dataDir, "papayd.db"); !strings.Contains(stderr.String(), src) {
		t.Errorf("stderr does not name %s:\n%s", src, stderr.Bytes())
	}
	for _, p := range []string{dataDir, dst} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a failed backup: stat %s = %v, want no file", p, err)
		}
	}
}
