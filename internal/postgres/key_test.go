package postgres

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// flushAsync waits until the writes queued so far are written.
func flushAsync(t *testing.T, db *DB) {
	t.Helper()
	if err := db.async.flush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	a := service.StoredKey{APIKey: service.APIKey{ID: "aaaaaaaaaaaa", Name: "billing-team",
		Scopes: []service.Scope{service.ScopeChargesWrite, service.ScopeChargesRead}, SubMchIDs: []string{"1900000109", "1900000110"},
		RateLimit: 50.5, CreateTime: t0.Add(7), ExpireTime: t0.Add(time.Hour + 9)}, Hash: sha256.Sum256([]byte("secret a"))}
	b := service.StoredKey{APIKey: service.APIKey{ID: "bbbbbbbbbbbb", Name: "ops", Scopes: []service.Scope{service.ScopeAdmin},
		CreateTime: t0}, Hash: sha256.Sum256([]byte("secret b"))}
	inTx(t, db, func(tx Tx) error { return tx.CreateKey(ctx, b) })
	inTx(t, db, func(tx Tx) error { return tx.CreateKey(ctx, a) })
	if err := db.InTx(ctx, func(tx Tx) error { return tx.CreateKey(ctx, a) }); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("CreateKey twice: %v, want ErrConflict", err)
	}
	keys, err := db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]service.StoredKey{a, b}, keys); diff != "" {
		t.Fatalf("Keys (-want +got):\n%s", diff)
	}

	var revoked service.APIKey
	inTx(t, db, func(tx Tx) (err error) {
		revoked, err = tx.RevokeKey(ctx, a.ID, t0.Add(time.Minute))
		return err
	})
	inTx(t, db, func(tx Tx) (err error) {
		revoked, err = tx.RevokeKey(ctx, a.ID, t0.Add(2*time.Minute))
		return err
	})
	want := a.APIKey
	want.RevokeTime = t0.Add(time.Minute)
	if diff := cmp.Diff(want, revoked); diff != "" {
		t.Fatalf("RevokeKey twice (-want +got):\n%s", diff)
	}
	if err := db.InTx(ctx, func(tx Tx) error { _, err := tx.RevokeKey(ctx, "nosuchkey", t0); return err }); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("RevokeKey unknown: %v, want ErrNotFound", err)
	}

	// TouchKey is queued: a flush returns after it is written.
	for _, at := range []time.Duration{3 * time.Minute, 2 * time.Minute} {
		if err := db.TouchKey(ctx, b.ID, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		flushAsync(t, db) // each in its own batch: the WHERE, not the batch's max, keeps the later
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
	keys, err = db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[1].LastUsedTime; !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("LastUsedTime %v, want the later use %v", got, t0.Add(3*time.Minute))
	}
	if !keys[0].LastUsedTime.IsZero() {
		t.Fatalf("untouched key's LastUsedTime %v", keys[0].LastUsedTime)
	}
	if err := db.TouchKey(ctx, b.ID, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatal("TouchKey beyond 2262 was queued")
	}
}

func TestKeysAreCheckedByTheSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	for name, k := range map[string]service.StoredKey{
		"no id":         {APIKey: service.APIKey{Name: "x", CreateTime: time.Now()}},
		"no name":       {APIKey: service.APIKey{ID: "x", CreateTime: time.Now()}},
		"negative rate": {APIKey: service.APIKey{ID: "x", Name: "x", RateLimit: -1, CreateTime: time.Now()}},
		"no time":       {APIKey: service.APIKey{ID: "x", Name: "x"}},
	} {
		if err := db.InTx(ctx, func(tx Tx) error { return tx.CreateKey(ctx, k) }); err == nil {
			t.Errorf("%s: CreateKey succeeded", name)
		}
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
