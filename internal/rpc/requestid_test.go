package rpc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		caller string
		kept   bool
	}{
		{"abc-123", true},
		{"with space", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"tab\t", false},
		{"newline\nforged=1", false},
		{"é", false},
	} {
		got := RequestID(tc.caller)
		if (got == tc.caller) != tc.kept || got == "" || len(got) > maxRequestIDBytes || !validRequestID(got) {
			t.Errorf("RequestID(%q) = %q, want the caller's kept: %v", tc.caller, got, tc.kept)
		}
	}
}

func TestRequestIDInterceptor(t *testing.T) {
	t.Parallel()
	ic := RequestIDInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/t/M"}
	seen := func(ctx context.Context) string {
		t.Helper()
		var id string
		_, err := ic(ctx, nil, info, func(ctx context.Context, _ any) (any, error) { id = RequestIDFrom(ctx); return nil, nil })
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	md := func(id string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs(RequestIDHeader, id))
	}
	if got := seen(WithRequestID(md("from-md"), "from-http")); got != "from-http" {
		t.Errorf("context id and metadata: handler saw %q, want the context's", got)
	}
	if got := seen(md("from-md")); got != "from-md" {
		t.Errorf("metadata: handler saw %q, want from-md", got)
	}
	if got := seen(md(strings.Repeat("y", 65))); got == "" || len(got) > maxRequestIDBytes {
		t.Errorf("invalid metadata: handler saw %q, want a new id", got)
	}
	if a, b := seen(context.Background()), seen(context.Background()); a == "" || a == b {
		t.Errorf("no id: handler saw %q then %q, want two new ids", a, b)
	}
}

func TestLogHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil))).With("component", "x")
	log.InfoContext(WithRequestID(context.Background(), "R1"), "with id")
	log.InfoContext(context.Background(), "without id")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "component=x request_id=R1") ||
		strings.Contains(lines[1], "request_id") || strings.Contains(lines[2], "request_id") {
		t.Errorf("log:\n%s", buf.String())
	}
	if h := LogHandler(log.Handler()); h != log.Handler() {
		t.Error("LogHandler wraps a handler twice")
	}
}
