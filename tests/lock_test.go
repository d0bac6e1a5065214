package tests

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/papayd/papayd/internal/app"
)

// TestOneProcessPerDataDirectory: a second papayd on a data directory in
// use refuses to start, naming the reason; once the first stops, it starts.
func TestOneProcessPerDataDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := start(t, dir)

	env := map[string]string{"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0", "PAPAYD_ADMIN_ADDR": "127.0.0.1:0", "PAPAYD_DATA_DIR": dir}
	cfg, err := app.ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "in use by another papayd") {
		t.Fatalf("second papayd on %s: %v, want a refusal", dir, err)
	}

	first.stop()
	start(t, dir)
}
