package main

import (
	"context"
	"strings"
	"testing"
)

// TestAudit: key changes made by `papayd keys` are in the audit trail that
// `papayd audit` prints, with the command line as their caller, and the
// filters select them.
func TestAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cmd := func(args ...string) (string, error) {
		var stdout, stderr strings.Builder
		err := run(ctx, append([]string{args[0], "-data-dir", dir}, args[1:]...), &stdout, &stderr)
		return stdout.String(), err
	}
	out, err := cmd("keys", "create", "--name", "ops", "--scopes", "admin")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "id:" {
			id = f[1]
		}
	}
	if _, err := cmd("keys", "revoke", id); err != nil {
		t.Fatal(err)
	}
	out, err = cmd("audit")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "RevokeKey") || !strings.Contains(lines[2], "CreateKey") ||
		!strings.Contains(lines[1], "keys/"+id) || !strings.Contains(lines[1], "papayd keys (command line)") {
		t.Fatalf("papayd audit printed:\n%s", out)
	}
	out, err = cmd("audit", "list", "-resource", "keys/"+id, "-limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "RevokeKey") {
		t.Fatalf("papayd audit list -resource -limit 1 printed:\n%s", out)
	}
	if _, err := cmd("audit", "bogus"); err == nil {
		t.Fatal("papayd audit bogus succeeded")
	}
}
