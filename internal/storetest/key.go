package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// storedKey is an API key id with every field but the times of use and
// revocation set.
func storedKey(id string, created time.Time) service.StoredKey {
	return service.StoredKey{APIKey: service.APIKey{ID: id, Name: "billing-" + id,
		Scopes: []service.Scope{service.ScopeChargesWrite, service.ScopeChargesRead}, SubMchIDs: []string{"1900000109", "1900000110"},
		RateLimit: 50.5, CreateTime: created, ExpireTime: created.Add(time.Hour + 1)}, Hash: sha256.Sum256([]byte("secret " + id))}
}

// keys runs Keys and fails the test on error.
func keys(t *testing.T, s service.Store) []service.StoredKey {
	t.Helper()
	ks, err := s.Keys(t.Context())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	return ks
}

func testKeys(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	t0 := base.In(shanghai)
	a := storedKey("aaaaaaaaaaaa", t0)
	b := service.StoredKey{APIKey: service.APIKey{ID: "bbbbbbbbbbbb", Name: "ops", Scopes: []service.Scope{service.ScopeAdmin},
		CreateTime: t0}, Hash: sha256.Sum256([]byte("secret b"))}
	// Created out of id order: Keys lists in id order.
	inTx(t, s, func(tx service.Tx) error { return tx.CreateKey(ctx, b) })
	inTx(t, s, func(tx service.Tx) error { return tx.CreateKey(ctx, a) })
	_, err := tx1(s, t, func(tx service.Tx) (int, error) { return 0, tx.CreateKey(ctx, storedKey("aaaaaaaaaaaa", t0)) })
	checkErr(t, "CreateKey of a recorded id", err, service.ErrConflict)
	if diff := cmp.Diff([]service.StoredKey{a, b}, keys(t, s)); diff != "" {
		t.Fatalf("Keys (-want +got):\n%s", diff)
	}
	for _, k := range keys(t, s) {
		checkUTC(t, "Keys", map[string]time.Time{"CreateTime": k.CreateTime, "ExpireTime": k.ExpireTime})
	}

	// The first revocation stands.
	for i, at := range []time.Duration{time.Minute, 2 * time.Minute} {
		revoked, err := tx1(s, t, func(tx service.Tx) (service.APIKey, error) { return tx.RevokeKey(ctx, a.ID, t0.Add(at)) })
		if err != nil {
			t.Fatalf("RevokeKey #%d: %v", i+1, err)
		}
		want := a.APIKey
		want.RevokeTime = t0.Add(time.Minute)
		if diff := cmp.Diff(want, revoked); diff != "" {
			t.Errorf("RevokeKey #%d (-want +got):\n%s", i+1, diff)
		}
	}
	a.RevokeTime = t0.Add(time.Minute)
	if diff := cmp.Diff([]service.StoredKey{a, b}, keys(t, s)); diff != "" {
		t.Errorf("Keys after RevokeKey (-want +got):\n%s", diff)
	}
	_, err = tx1(s, t, func(tx service.Tx) (service.APIKey, error) { return tx.RevokeKey(ctx, "nosuchkey", t0) })
	checkErr(t, "RevokeKey of an unknown id", err, service.ErrNotFound)
}

func testTouchKey(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	t0 := base
	k := storedKey("cccccccccccc", t0)
	inTx(t, s, func(tx service.Tx) error { return tx.CreateKey(ctx, k) })
	lastUsed := func(want time.Time) func() (bool, error) {
		return func() (bool, error) {
			ks, err := s.Keys(ctx)
			if err != nil || len(ks) != 1 {
				return false, err
			}
			return ks[0].LastUsedTime.Equal(want), nil
		}
	}
	// A later use, then an earlier one: the later one stays.
	for _, at := range []time.Duration{3 * time.Minute, 2 * time.Minute} {
		if err := s.TouchKey(ctx, k.ID, t0.Add(at)); err != nil {
			t.Fatalf("TouchKey: %v", err)
		}
	}
	if err := s.TouchKey(ctx, "nosuchkey", t0); err != nil {
		t.Fatalf("TouchKey of an unknown id: %v, want nil", err)
	}
	eventually(t, "LastUsedTime is the later use", lastUsed(t0.Add(3*time.Minute)))
	// Once a later use is recorded, the earlier ones are either recorded
	// already or lost: LastUsedTime never goes back.
	if err := s.TouchKey(ctx, k.ID, t0.Add(time.Minute)); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	if err := s.TouchKey(ctx, k.ID, t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("TouchKey: %v", err)
	}
	eventually(t, "LastUsedTime is the latest use", lastUsed(t0.Add(4*time.Minute)))
	ks := keys(t, s)
	checkUTC(t, "touched", map[string]time.Time{"LastUsedTime": ks[0].LastUsedTime})
	k.LastUsedTime = t0.Add(4 * time.Minute)
	if diff := cmp.Diff([]service.StoredKey{k}, ks); diff != "" {
		t.Errorf("Keys after TouchKey (-want +got):\n%s", diff)
	}
}

// testKeyChecks: a key without an id, a name or a create time, or with a
// negative rate limit, is refused.
func testKeyChecks(t *testing.T, open Opener) {
	s := open(t)
	for name, k := range map[string]service.StoredKey{
		"no id":         {APIKey: service.APIKey{Name: "x", CreateTime: base}},
		"no name":       {APIKey: service.APIKey{ID: "x", CreateTime: base}},
		"negative rate": {APIKey: service.APIKey{ID: "x", Name: "x", RateLimit: -1, CreateTime: base}},
		"no time":       {APIKey: service.APIKey{ID: "x", Name: "x"}},
	} {
		if err := s.InTx(t.Context(), func(tx service.Tx) error { return tx.CreateKey(t.Context(), k) }); err == nil {
			t.Errorf("CreateKey, %s: err = nil, want an error", name)
		}
	}
	if ks := keys(t, s); len(ks) != 0 {
		t.Errorf("Keys after the refused ones: %v, want none", ks)
	}
}
