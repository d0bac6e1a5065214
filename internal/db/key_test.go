package db

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	a := service.StoredKey{APIKey: service.APIKey{ID: "aaaaaaaaaaaa", Name: "billing-team",
		Scopes: []service.Scope{service.ScopeChargesWrite, service.ScopeChargesRead}, SubMchIDs: []string{"1900000109", "1900000110"},
		RateLimit: 50, CreateTime: t0, ExpireTime: t0.Add(time.Hour)}, Hash: sha256.Sum256([]byte("secret a"))}
	b := service.StoredKey{APIKey: service.APIKey{ID: "bbbbbbbbbbbb", Name: "ops", Scopes: []service.Scope{service.ScopeAdmin},
		CreateTime: t0}, Hash: sha256.Sum256([]byte("secret b"))}
	inTx(t, db, func(tx service.Tx) error { return tx.CreateKey(ctx, b) })
	inTx(t, db, func(tx service.Tx) error { return tx.CreateKey(ctx, a) })
	if err := db.InTx(ctx, func(tx service.Tx) error { return tx.CreateKey(ctx, a) }); !errors.Is(err, service.ErrConflict) {
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
	inTx(t, db, func(tx service.Tx) (err error) {
		revoked, err = tx.RevokeKey(ctx, a.ID, t0.Add(time.Minute))
		return err
	})
	inTx(t, db, func(tx service.Tx) (err error) {
		revoked, err = tx.RevokeKey(ctx, a.ID, t0.Add(2*time.Minute))
		return err
	})
	want := a.APIKey
	want.RevokeTime = t0.Add(time.Minute)
	if diff := cmp.Diff(want, revoked); diff != "" {
		t.Fatalf("RevokeKey twice (-want +got):\n%s", diff)
	}
	if err := db.InTx(ctx, func(tx service.Tx) error { _, err := tx.RevokeKey(ctx, "nosuchkey", t0); return err }); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("RevokeKey unknown: %v, want ErrNotFound", err)
	}

	// TouchKey is queued: the next transaction commits after it.
	for _, at := range []time.Duration{3 * time.Minute, 2 * time.Minute} {
		if err := db.TouchKey(ctx, b.ID, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.TouchKey(ctx, "nosuchkey", t0); err != nil {
		t.Fatal(err)
	}
	inTx(t, db, func(service.Tx) error { return nil })
	keys, err = db.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[1].LastUsedTime; !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("LastUsedTime %v, want the later use %v", got, t0.Add(3*time.Minute))
	}
}

func TestKeysAreCheckedByTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTestDB(t)
	for name, k := range map[string]service.StoredKey{
		"no id":         {APIKey: service.APIKey{Name: "x", CreateTime: time.Now()}},
		"no name":       {APIKey: service.APIKey{ID: "x", CreateTime: time.Now()}},
		"negative rate": {APIKey: service.APIKey{ID: "x", Name: "x", RateLimit: -1, CreateTime: time.Now()}},
		"no time":       {APIKey: service.APIKey{ID: "x", Name: "x"}},
	} {
		if err := db.InTx(ctx, func(tx service.Tx) error { return tx.CreateKey(ctx, k) }); err == nil {
			t.Errorf("%s: CreateKey succeeded", name)
		}
	}
}
