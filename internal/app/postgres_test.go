package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/service"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// sandboxOn returns a sandbox-mode configuration on the PostgreSQL database
// url, on loopback ports of its own.
func sandboxOn(t *testing.T, url string) Config {
	t.Helper()
	env := map[string]string{
		"PAPAYD_DATABASE_URL": url, "PAPAYD_DATA_DIR": t.TempDir(),
		"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0",
		"PAPAYD_SANDBOX_TIME_SCALE": "0.0001",
	}
	cfg, err := ParseConfig([]string{"-admin-addr", ""}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runApp runs a until the test ends.
func runApp(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// readyz returns the status of GET /readyz on a.
func readyz(t *testing.T, a *App) int {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + a.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzFailsWhenTheDatabaseIsUnreachable: on PostgreSQL, /readyz
// answers 200 while the database takes writes and 503 once its server is
// gone, so a load balancer stops sending this replica traffic.
func TestReadyzFailsWhenTheDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	cluster, err := pgtest.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cluster.Stop()
		}
	})
	// Its own server, stopped below: the postgres database itself.
	a, err := New(t.Context(), sandboxOn(t, cluster.URL()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runApp(t, a)
	if got := readyz(t, a); got != http.StatusOK {
		t.Fatalf("/readyz with the database up: %d, want 200", got)
	}
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	// An answer is reused for a second (internal/web's readyCacheFor).
	deadline := time.Now().Add(10 * time.Second)
	for got := readyz(t, a); got != http.StatusServiceUnavailable; got = readyz(t, a) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with the database gone for 10 s: %d, want 503", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSandboxRunsOneReplicaOnADatabase: the simulated WeChat Pay lives in
// the process, so a second papayd in sandbox mode on the same PostgreSQL
// database is refused at start, naming why; once the first stops, the
// database takes another.
func TestSandboxRunsOneReplicaOnADatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	first := sandboxOn(t, url)
	a, err := New(t.Context(), first, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	second := sandboxOn(t, url)
	second.DataDir = first.DataDir // the same simulator credentials: the same sp_mchid
	if b, err := New(t.Context(), second, slog.New(slog.DiscardHandler)); err == nil {
		b.closeAll()
		t.Fatal("a second sandbox papayd started on the database")
	} else if !strings.Contains(err.Error(), "sandbox mode runs one replica") {
		t.Fatalf("second sandbox papayd: %v, want the one-replica refusal", err)
	}
	a.closeAll()
	b, err := New(t.Context(), second, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	b.closeAll()
}

// TestKeysCommandsOnPostgres: `papayd keys` works on PAPAYD_DATABASE_URL's
// database, and a key it creates is the one a replica there authenticates.
func TestKeysCommandsOnPostgres(t *testing.T) {
	t.Parallel()
	cfg := sandboxOn(t, pgtest.Shared(t).NewDatabase(t.Context(), t))
	var out strings.Builder
	if err := CreateKey(t.Context(), cfg, service.KeyInput{Name: "billing", Scopes: []service.Scope{service.ScopeChargesRead}}, &out); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	if err := ListKeys(t.Context(), cfg, &list); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.String(), "billing") || !strings.Contains(list.String(), "charges:read") {
		t.Fatalf("papayd keys list on PostgreSQL:\n%s\nwant the key billing with charges:read", list.String())
	}
}

// TestMigrateCommandOnPostgres: `papayd migrate` applies the migrations of
// PAPAYD_DATABASE_URL's database and says so; run again, it has nothing
// to do and says the same.
func TestMigrateCommandOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	cfg := sandboxOn(t, url)
	for range 2 {
		var out strings.Builder
		if err := Migrate(t.Context(), cfg, &out); err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "papayd: the PostgreSQL database is migrated\n"; got != want {
			t.Errorf("papayd migrate said %q, want %q", got, want)
		}
	}
	s, err := openStore(t.Context(), cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ClaimLease(t.Context(), "probe", time.Now(), service.Lease{Owner: "a", TTL: time.Second}); err != nil {
		t.Errorf("the leases of the newest migration are not there after papayd migrate: %v", err)
	}
}
