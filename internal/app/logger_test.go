package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestJSONLogDurations checks that a duration in a JSON log comes out as
// <name>_ms, in milliseconds, at any depth, and in text as Go writes it.
func TestJSONLogDurations(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewLogger(Config{LogLevel: "info", LogFormat: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.With("since", 3*time.Second).Info("rpc", "duration", 1500*time.Microsecond, "attempt", 2,
		slog.Group("retry", slog.Duration("pause", 250*time.Millisecond)))
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", buf.Bytes(), err)
	}
	delete(got, "time")
	want := map[string]any{
		"level": "INFO", "msg": "rpc", "since_ms": 3000.0, "duration_ms": 1.5, "attempt": 2.0,
		"retry": map[string]any{"pause_ms": 250.0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON log (-want +got):\n%s", diff)
	}

	buf.Reset()
	text, err := NewLogger(Config{LogLevel: "info", LogFormat: "text"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	text.Info("rpc", "duration", 1500*time.Microsecond)
	if !strings.Contains(buf.String(), " duration=1.5ms") {
		t.Errorf("text log %q: want duration=1.5ms", buf.String())
	}
}
