package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages pkg imports, directly or not (non-test code).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestImportDirection keeps the layers pointing inward: the domain imports
// only the standard library, and storage and the WeChat client know no
// transport.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const mod = "github.com/papayd/papayd/"
	for _, d := range deps(t, mod+"internal/service") {
		if d != mod+"internal/service" {
			t.Errorf("internal/service imports %s; the domain may import the standard library only", d)
		}
	}
	for _, pkg := range []string{"internal/db", "internal/postgres", "internal/pagetoken", "internal/storetest", "internal/wechat", "internal/wechat/sandbox", "internal/webhook"} {
		for _, d := range deps(t, mod+pkg) {
			for _, banned := range []string{mod + "internal/rpc", mod + "internal/web", mod + "internal/app", mod + "gen", "google.golang.org/grpc"} {
				if d == banned || strings.HasPrefix(d, banned+"/") {
					t.Errorf("%s imports %s: data flows transport -> service -> (db, postgres, wechat)", pkg, d)
				}
			}
		}
	}
	// The stores do not know each other: the domain's interface is their
	// only contract.
	for pkg, other := range map[string]string{"internal/db": "internal/postgres", "internal/postgres": "internal/db"} {
		for _, d := range deps(t, mod+pkg) {
			if d == mod+other {
				t.Errorf("%s imports %s: each store implements service.Store on its own", pkg, other)
			}
		}
	}
}
