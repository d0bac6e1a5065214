package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// keyIDs is seqIDs that also makes key ids and secrets in sequence.
type keyIDs struct {
	seqIDs
	n int
}

func (k *keyIDs) NewKeyID() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.n++
	return fmt.Sprintf("key%09d", k.n)[:keyIDLen]
}

func (k *keyIDs) NewKeySecret() (s [32]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s[0] = byte(k.n)
	return s
}

var billing = KeyInput{Name: "billing-team", Scopes: []Scope{ScopeChargesWrite, ScopeChargesRead},
	SubMchIDs: []string{"1900000109"}, ExpireTime: t0.Add(365 * 24 * time.Hour), RateLimit: 50}

func (f *fixture) createKey(t *testing.T, in KeyInput) (APIKey, string) {
	t.Helper()
	k, token, err := f.svc.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k, token
}

func TestCreateKeyValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		edit  func(*KeyInput)
		field string
	}{
		{"no name", func(in *KeyInput) { in.Name = "" }, "name"},
		{"long name", func(in *KeyInput) { in.Name = strings.Repeat("n", 65) }, "name"},
		{"no scopes", func(in *KeyInput) { in.Scopes = nil }, "scopes"},
		{"unknown scope", func(in *KeyInput) { in.Scopes = []Scope{"charges:delete"} }, "scopes"},
		{"empty sub_mchid", func(in *KeyInput) { in.SubMchIDs = []string{"1", ""} }, "sub_mchids[1]"},
		{"sub_mchid with a space", func(in *KeyInput) { in.SubMchIDs = []string{"19 00"} }, "sub_mchids[0]"},
		{"sub_mchid with a comma", func(in *KeyInput) { in.SubMchIDs = []string{"1,2"} }, "sub_mchids[0]"},
		{"expired", func(in *KeyInput) { in.ExpireTime = t0 }, "expire_time"},
		{"negative rate", func(in *KeyInput) { in.RateLimit = -1 }, "rate_limit"},
		{"NaN rate", func(in *KeyInput) { in.RateLimit = math.NaN() }, "rate_limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			in := billing
			c.edit(&in)
			_, _, err := f.svc.CreateKey(context.Background(), in)
			e := AsError(err)
			if e.Kind != KindInvalid || len(e.Violations) == 0 || e.Violations[0].Field != c.field {
				t.Fatalf("CreateKey: %v (%+v), want INVALID_ARGUMENT on %s", err, e.Violations, c.field)
			}
		})
	}
}

func TestCreateListRevokeKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	f.svc.ids = &keyIDs{}
	k, token := f.createKey(t, billing)
	want := APIKey{ID: "key000000001", Name: "billing-team", Scopes: billing.Scopes, SubMchIDs: billing.SubMchIDs,
		RateLimit: 50, CreateTime: t0, ExpireTime: billing.ExpireTime}
	if diff := cmp.Diff(want, k); diff != "" {
		t.Fatalf("CreateKey (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(token, "pk_key000000001_") || len(token) != 3+keyIDLen+1+keySecretLen {
		t.Fatalf("token %q", token)
	}
	stored := f.store.view().keys[k.ID]
	if strings.Contains(fmt.Sprint(stored), token[len("pk_key000000001_"):]) {
		t.Fatal("the store holds the secret")
	}
	keys, err := f.svc.ListKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}

	f.clock.advance(time.Minute)
	r, err := f.svc.RevokeKey(ctx, k.ID)
	if err != nil || !r.RevokeTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("RevokeKey = %+v, %v", r, err)
	}
	f.clock.advance(time.Minute)
	again, err := f.svc.RevokeKey(ctx, k.ID)
	if err != nil || !again.RevokeTime.Equal(r.RevokeTime) {
		t.Fatalf("RevokeKey again = %+v, %v; want the first revocation kept", again, err)
	}
	if _, err := f.svc.RevokeKey(ctx, "nosuchkey000"); !errors.Is(err, ErrKeyNotFound) || KindOf(err) != KindNotFound {
		t.Fatalf("RevokeKey unknown: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	k, token := f.createKey(t, billing)
	_, revokedToken := f.createKey(t, billing)
	in := billing
	in.ExpireTime = t0.Add(time.Hour)
	_, expiringToken := f.createKey(t, in)
	if _, err := f.svc.RevokeKey(ctx, strings.Split(revokedToken, "_")[1]); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2 * time.Hour)

	got, err := f.svc.Authenticate(ctx, token)
	if err != nil || got.ID != k.ID || !got.Has(ScopeChargesWrite) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	secret := token[len("pk_")+keyIDLen+1:]
	wrong := token[:len(token)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(token, "a")]
	cases := []struct{ name, token, detail string }{
		{"empty", "", "malformed"},
		{"bearer prefix", "Bearer " + token, "malformed"},
		{"short", token[:len(token)-1], "malformed"},
		{"upper-case id", "pk_" + strings.ToUpper(k.ID) + "_" + secret, "malformed"},
		{"unknown", "pk_aaaaaaaaaaaa_" + secret, "unknown"},
		{"wrong secret", wrong, "wrong secret"},
		{"revoked", revokedToken, "revoked"},
		{"expired", expiringToken, "expired"},
	}
	for _, c := range cases {
		_, err := f.svc.Authenticate(ctx, c.token)
		if !errors.Is(err, ErrUnauthenticated) || KindOf(err) != KindUnauthenticated || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: Authenticate: %v, want UNAUTHENTICATED (%s)", c.name, err, c.detail)
		}
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), wrong[len(wrong)-keySecretLen:])) {
			t.Errorf("%s: the error holds the secret: %v", c.name, err)
		}
	}
}

// randomToken returns a well-formed token of random id and secret.
func randomToken() string {
	var id [8]byte
	var secret [32]byte
	_, _ = rand.Read(id[:])
	_, _ = rand.Read(secret[:])
	return "pk_" + keyEncoding.EncodeToString(id[:])[:keyIDLen] + "_" + keyEncoding.EncodeToString(secret[:])
}

func TestAuthenticateRefusesRandomTokensWithoutReading(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	_, token := f.createKey(t, billing)
	if _, err := f.svc.Authenticate(ctx, token); err != nil { // loads the set
		t.Fatal(err)
	}
	reads := f.store.keyReads.Load()
	for range 10000 {
		if _, err := f.svc.Authenticate(ctx, randomToken()); !errors.Is(err, errKeyUnknown) {
			t.Fatalf("Authenticate(random) = %v, want unknown", err)
		}
	}
	if n := f.store.keyReads.Load() - reads; n != 0 {
		t.Fatalf("10,000 random tokens read the keys %d times, want 0", n)
	}
}

func TestAuthenticateReloadsAfter5s(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	k, token := f.createKey(t, billing)
	if _, err := f.svc.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	// Another process (papayd keys revoke) revokes the key.
	if err := f.store.InTx(ctx, func(tx Tx) error { _, err := tx.RevokeKey(ctx, k.ID, f.clock.Now()); return err }); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(keyRefresh - time.Millisecond)
	if _, err := f.svc.Authenticate(ctx, token); err != nil {
		t.Fatalf("within 5 s the set is not reloaded: %v", err)
	}
	f.clock.advance(time.Millisecond)
	if _, err := f.svc.Authenticate(ctx, token); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("after 5 s: Authenticate = %v, want revoked", err)
	}
}

func TestAuthenticateReloadsOnceForABurst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	_, token := f.createKey(t, billing)
	if _, err := f.svc.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	f.store.mu.Lock()
	f.store.keysHook = func() { <-release }
	f.store.mu.Unlock()
	reads := f.store.keyReads.Load()
	f.clock.advance(keyRefresh)

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := f.svc.Authenticate(ctx, token)
			errs <- err
		})
	}
	for f.store.keyReads.Load() == reads {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind the load
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.store.keyReads.Load() - reads; n != 1 {
		t.Fatalf("a burst of 50 reloaded %d times, want 1", n)
	}
}

func TestAuthenticateKeepsTheOldSetWhenAReloadFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	_, token := f.createKey(t, billing)

	f.store.mu.Lock()
	f.store.failKeys = errors.New("disk on fire")
	f.store.mu.Unlock()
	if _, err := f.svc.Authenticate(ctx, token); KindOf(err) != KindUnavailable {
		t.Fatalf("first load failed: Authenticate = %v, want UNAVAILABLE", err)
	}
	f.clock.advance(keyRetry)
	f.store.mu.Lock()
	f.store.failKeys = nil
	f.store.mu.Unlock()
	if _, err := f.svc.Authenticate(ctx, token); err != nil {
		t.Fatalf("retried: %v", err)
	}

	f.store.mu.Lock()
	f.store.failKeys = errors.New("disk on fire")
	f.store.mu.Unlock()
	f.clock.advance(keyRefresh)
	reads := f.store.keyReads.Load()
	for range 10 {
		if _, err := f.svc.Authenticate(ctx, token); err != nil {
			t.Fatalf("a failed reload must keep the old set: %v", err)
		}
	}
	if n := f.store.keyReads.Load() - reads; n != 1 {
		t.Fatalf("a failed reload was tried %d times within a second, want 1", n)
	}
	f.clock.advance(keyRetry)
	if _, err := f.svc.Authenticate(ctx, token); err != nil || f.store.keyReads.Load()-reads != 2 {
		t.Fatalf("after a second the reload is retried: %v, %d reads", err, f.store.keyReads.Load()-reads)
	}
}

func TestAuthenticateRecordsUseOnceAMinute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	k, token := f.createKey(t, billing)
	lastUsed := func() time.Time { return f.store.view().keys[k.ID].LastUsedTime }
	for range 3 {
		if _, err := f.svc.Authenticate(ctx, token); err != nil {
			t.Fatal(err)
		}
		f.clock.advance(10 * time.Second) // reloads the set on the way
	}
	if !lastUsed().Equal(t0) {
		t.Fatalf("LastUsedTime %v, want %v (once a minute)", lastUsed(), t0)
	}
	f.clock.advance(time.Minute)
	if _, err := f.svc.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(90 * time.Second); !lastUsed().Equal(want) {
		t.Fatalf("LastUsedTime %v, want %v", lastUsed(), want)
	}
	if _, err := f.svc.Authenticate(ctx, randomToken()); err == nil {
		t.Fatal("random token accepted")
	}
}

func TestCreateKeyIsUsableAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	_, first := f.createKey(t, billing)
	if _, err := f.svc.Authenticate(ctx, first); err != nil {
		t.Fatal(err)
	}
	_, second := f.createKey(t, billing)
	if _, err := f.svc.Authenticate(ctx, second); err != nil {
		t.Fatalf("a key this process created is refused: %v", err)
	}
}

func BenchmarkAuthenticateRefusesRandomTokens(b *testing.B) {
	ctx := context.Background()
	f := newFixture()
	for range 100 {
		if _, _, err := f.svc.CreateKey(ctx, billing); err != nil {
			b.Fatal(err)
		}
	}
	tokens := make([]string, 1024)
	for i := range tokens {
		tokens[i] = randomToken()
	}
	if _, err := f.svc.Authenticate(ctx, tokens[0]); !errors.Is(err, ErrUnauthenticated) {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.svc.Authenticate(ctx, tokens[i%len(tokens)]); err == nil {
			b.Fatal("accepted")
		}
	}
}

func TestAuthenticateName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	named := func(name string) KeyInput { in := billing; in.Name = name; return in }
	k, _ := f.createKey(t, named("spiffe://example/billing"))
	revoked, _ := f.createKey(t, named("spiffe://example/billing"))
	if _, err := f.svc.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	f.createKey(t, named("twice"))
	f.createKey(t, named("twice"))
	short := named("expiring")
	short.ExpireTime = t0.Add(time.Hour)
	f.createKey(t, short)
	f.clock.advance(2 * time.Hour)

	got, err := f.svc.AuthenticateName(ctx, "spiffe://example/billing")
	if err != nil || got.ID != k.ID {
		t.Fatalf("AuthenticateName = %+v, %v; want %s (the revoked key of the same name does not count)", got, err, k.ID)
	}
	for _, c := range []struct{ name, detail string }{
		{"twice", "more than one"},
		{"expiring", "no usable"},
		{"spiffe://example/Billing", "no usable"},
		{"spiffe://example/billing ", "no usable"},
		{"nobody", "no usable"},
	} {
		_, err := f.svc.AuthenticateName(ctx, c.name)
		if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("AuthenticateName(%q) = %v, want UNAUTHENTICATED (%s)", c.name, err, c.detail)
		}
	}
	reads := f.store.keyReads.Load()
	for range 1000 {
		if _, err := f.svc.AuthenticateName(ctx, "nobody"); !errors.Is(err, errNameUnknown) {
			t.Fatalf("AuthenticateName(nobody) = %v", err)
		}
	}
	if n := f.store.keyReads.Load() - reads; n != 0 {
		t.Errorf("unknown names read the keys %d times, want 0", n)
	}
}
