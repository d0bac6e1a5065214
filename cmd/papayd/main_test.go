package main

import (
	"context"
	"errors"
	"flag"
	"runtime"
	"strings"
	"testing"
)

// TestHelp: papayd -h begins with what papayd is, lists the subcommands,
// and shows each flag with its type.
func TestHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	if err := run(context.Background(), []string{"-h"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("papayd -h: %v", err)
	}
	help := stderr.String()
	first, _, _ := strings.Cut(help, "\n")
	if !strings.HasPrefix(first, "papayd serves WeChat Pay Global auto-debit") {
		t.Errorf("first line %q is not a summary", first)
	}
	for _, want := range []string{
		"papayd backup [flags] DEST", "papayd verify [flags]", "papayd version",
		"-shutdown-timeout duration", "-record-cache int", "-reconcile-time-scale float",
		"-final-recheck durations", "-grpc-addr string", "(env PAPAYD_SHUTDOWN_TIMEOUT) (default 10s)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("papayd -h lacks %q:\n%s", want, help)
		}
	}
}

// TestVersion: papayd version and papayd -version print the module
// version, the VCS revision and the Go version on one line.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"-version"}} {
		var stdout, stderr strings.Builder
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("papayd %s: %v", args[0], err)
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "papayd ") || !strings.Contains(out, " revision ") ||
			!strings.HasSuffix(out, " "+runtime.Version()+"\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("papayd %s printed %q", args[0], out)
		}
	}
	if err := run(context.Background(), []string{"version", "extra"}, new(strings.Builder), new(strings.Builder)); err == nil {
		t.Error("papayd version extra was accepted")
	}
}
