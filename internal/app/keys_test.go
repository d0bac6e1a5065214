package app

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/service"
)

// stepClock is a clock the test moves.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestKeysReachARunningPapayd: a key created and revoked by `papayd keys`
// (its own database handle, as another process has) is accepted, then
// refused, by a serving papayd's service within 5 s.
func TestKeysReachARunningPapayd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := Config{DataDir: t.TempDir()}
	store, err := db.Open(ctx, filepath.Join(cfg.DataDir, "papayd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := &stepClock{now: time.Now()}
	running := service.New(service.Config{}, store, nil, clock, randomIDs{}, nil)
	if _, err := running.Authenticate(ctx, "pk_aaaaaaaaaaaa_"+strings.Repeat("a", 52)); !errors.Is(err, service.ErrUnauthenticated) {
		t.Fatalf("Authenticate before any key: %v", err)
	}

	var out strings.Builder
	if err := CreateKey(ctx, cfg, service.KeyInput{Name: "billing-team", Scopes: []service.Scope{service.ScopeChargesRead}}, &out); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String()[strings.Index(out.String(), "key: ")+len("key: "):])
	id := strings.Split(token, "_")[1]

	clock.advance(5 * time.Second)
	k, err := running.Authenticate(ctx, token)
	if err != nil || k.ID != id {
		t.Fatalf("a key created by papayd keys, 5 s later: %+v, %v", k, err)
	}

	if err := RevokeKey(ctx, cfg, id, &out); err != nil {
		t.Fatal(err)
	}
	clock.advance(4 * time.Second)
	if _, err := running.Authenticate(ctx, token); err != nil {
		t.Logf("revocation seen within 4 s already: %v", err)
	}
	clock.advance(time.Second)
	if _, err := running.Authenticate(ctx, token); !errors.Is(err, service.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a key revoked by papayd keys, 5 s later: %v, want revoked", err)
	}

	out.Reset()
	if err := ListKeys(ctx, cfg, &out); err != nil || !strings.Contains(out.String(), id) || strings.Contains(out.String(), token[len("pk_")+13:]) {
		t.Fatalf("ListKeys: %v\n%s", err, out.String())
	}
}
