package postgres

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// flushAsync waits until the writes queued so far are written.
func flushAsync(t *testing.T, db *DB) {
	t.Helper()
	if err := db.async.flush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestTouchKeyQueue: TouchKey is queued for the async writer, and a flush
// returns after it is written. Each use in its own batch, the later use
// stays by the WHERE of the write, not by the batch's max; a use of an
// unknown or empty id, or at the zero time, is dropped; a use beyond 2262
// is refused before it is queued.
func TestTouchKeyQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	a := service.StoredKey{APIKey: service.APIKey{ID: "aaaaaaaaaaaa", Name: "billing-team", CreateTime: t0},
		Hash: sha256.Sum256([]byte("secret a"))}
	b := service.StoredKey{APIKey: service.APIKey{ID: "bbbbbbbbbbbb", Name: "ops", Scopes: []service.Scope{service.ScopeAdmin},
		CreateTime: t0}, Hash: sha256.Sum256([]byte("secret b"))}
	inTx(t, db, func(tx Tx) error { return errors.Join(tx.CreateKey(ctx, a), tx.CreateKey(ctx, b)) })
	for _, at := range []time.Duration{3 * time.Minute, 2 * time.Minute} {
		if err := db.TouchKey(ctx, b.ID, t0.Add(at)); err != nil {
			t.Fatalf("TouchKey: %v", err)
		}
		flushAsync(t, db)
	}
	for _, id := range []string{"nosuchkey", ""} {
		if err := db.TouchKey(ctx, id, t0); err != nil {
			t.Fatalf("TouchKey %q: %v", id, err)
		}
	}
	if err := db.TouchKey(ctx, b.ID, time.Time{}); err != nil {
		t.Fatalf("TouchKey at the zero time: %v", err)
	}
	flushAsync(t, db)
	keys, err := db.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if got := keys[1].LastUsedTime; !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("LastUsedTime %v, want the later use %v", got, t0.Add(3*time.Minute))
	}
	if !keys[0].LastUsedTime.IsZero() {
		t.Fatalf("untouched key's LastUsedTime %v, want zero", keys[0].LastUsedTime)
	}
	if err := db.TouchKey(ctx, b.ID, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("TouchKey beyond 2262: err = nil, want an error")
	}
}

// TestTouchKeyAcrossReplicas: two stores on one database touch one key with
// interleaved times, each from several goroutines; the last used time
// recorded is the latest of all, whatever order the writes landed in.
func TestTouchKeyAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	other, err := Open(ctx, db.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	k := service.StoredKey{APIKey: service.APIKey{ID: "cccccccccccc", Name: "c", CreateTime: t0}}
	inTx(t, db, func(tx Tx) error { return tx.CreateKey(ctx, k) })
	const n = 200
	latest := t0.Add(n * time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		replica := []*DB{db, other}[g%2]
		wg.Go(func() {
			for i := range n {
				// Falling times, interleaved between the goroutines, all
				// before latest, which goroutine 0 touches first.
				at := t0.Add(time.Duration((n-1-i)*4+g) * time.Second / 4)
				if g == 0 && i == 0 {
					at = latest
				}
				if err := replica.TouchKey(ctx, k.ID, at); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	flushAsync(t, db)
	flushAsync(t, other)
	keys, err := db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[0].LastUsedTime; !got.Equal(latest) {
		t.Fatalf("LastUsedTime %v, want the latest touch %v", got, latest)
	}
}

// TestTouchWhileRevoking: touches written while transactions revoke the
// same key are absorbed by InTx's retries: every revocation
// succeeds, the first stands, and the latest touch is recorded.
func TestTouchWhileRevoking(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	k := service.StoredKey{APIKey: service.APIKey{ID: "dddddddddddd", Name: "d", CreateTime: t0}}
	inTx(t, db, func(tx Tx) error { return tx.CreateKey(ctx, k) })
	const n = 100
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if err := db.TouchKey(ctx, k.ID, t0.Add(time.Duration(i+1)*time.Second)); err != nil {
				t.Error(err)
				return
			}
			if err := db.async.flush(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for i := range 20 {
		err := db.InTx(ctx, func(t Tx) error {
			// Read, then write: a touch committed between is a conflict.
			var keys int
			if err := t.(*tx).q.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&keys); err != nil || keys != 1 {
				return fmt.Errorf("%d keys: %w", keys, err)
			}
			_, err := t.RevokeKey(ctx, k.ID, t0.Add(time.Duration(i+1)*time.Minute))
			return err
		})
		if err != nil {
			t.Fatalf("revocation %d: %v", i, err)
		}
	}
	wg.Wait()
	keys, err := db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[0]; !got.RevokeTime.Equal(t0.Add(time.Minute)) || !got.LastUsedTime.Equal(t0.Add(n*time.Second)) {
		t.Fatalf("revoked %v, last used %v; want %v and %v", got.RevokeTime, got.LastUsedTime,
			t0.Add(time.Minute), t0.Add(n*time.Second))
	}
}
