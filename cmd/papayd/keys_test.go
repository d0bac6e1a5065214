package main

import (
	"context"
	"strings"
	"testing"
)

// TestKeys drives `papayd keys` end to end: create, list (no secret),
// revoke.
func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	keys := func(args ...string) (string, error) {
		var stdout, stderr strings.Builder
		err := run(ctx, append([]string{"keys", "-data-dir", dir}, args...), &stdout, &stderr)
		return stdout.String(), err
	}
	out, err := keys("create", "--name", "billing-team", "--scopes", "charges:write,charges:read",
		"--sub-mchid", "1900000109", "--sub-mchid", "1900000110", "--expires", "2099-06-30", "--rate", "50")
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	var id, token string
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "id:" {
			id = f[1]
		}
		if len(f) == 2 && f[0] == "key:" {
			token = f[1]
		}
	}
	if id == "" || !strings.HasPrefix(token, "pk_"+id+"_") {
		t.Fatalf("keys create printed %q", out)
	}
	secret := strings.TrimPrefix(token, "pk_"+id+"_")

	out, err = keys("list")
	if err != nil {
		t.Fatalf("keys list: %v", err)
	}
	for _, want := range []string{id, "billing-team", "charges:write,charges:read", "1900000109,1900000110", "2099-06-30T00:00:00Z", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Fatalf("keys list shows the secret:\n%s", out)
	}

	if out, err = keys("revoke", id); err != nil || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("keys revoke = %q, %v", out, err)
	}
	if _, err = keys("revoke", id); err != nil {
		t.Fatalf("keys revoke again: %v", err)
	}
	if _, err = keys("revoke", "nosuchkey"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("keys revoke unknown: %v", err)
	}
	out, _ = keys("list")
	if f := strings.Fields(strings.SplitN(out[strings.Index(out, id):], "\n", 2)[0]); f[len(f)-1] == "-" {
		t.Errorf("keys list after revoke shows no revoke time:\n%s", out)
	}

	for _, bad := range [][]string{
		{"create", "--scopes", "charges:read"},                                    // no name
		{"create", "--name", "x", "--scopes", "charges:delete"},                   // unknown scope
		{"create", "--name", "x", "--scopes", "admin", "--expires", "2000-01-01"}, // past
		{"create", "--name", "x", "--scopes", "admin", "extra"},
		{"list", "extra"},
		{"revoke"},
		{"rotate"},
		{},
	} {
		if _, err := keys(bad...); err == nil {
			t.Errorf("keys %v succeeded", bad)
		}
	}
}
