package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// An API key's token is "pk_<id>_<secret>": the id, keyIDLen characters of
// lower-case base32, names the key; the secret is 256 random bits in
// lower-case base32. Only the SHA-256 hash of the secret's text is stored.
const (
	keyTokenPrefix = "pk_"
	keyIDLen       = 12
	keySecretLen   = 52 // base32 of 32 bytes, unpadded
)

// keyEncoding encodes ids and secrets: lower-case base32 has no '_', so the
// token splits on its first two.
var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key set refresh: Authenticate reloads its set when it is older than
// keyRefresh, so a key revoked by another process (papayd keys revoke) is
// refused within that time; a failed reload is retried after keyRetry,
// serving the old set meanwhile. LastUsedTime is recorded at most every
// keyTouchEvery per key.
const (
	keyRefresh    = 5 * time.Second
	keyRetry      = time.Second
	keyTouchEvery = time.Minute
)

// ErrKeyNotFound is RevokeKey's error for an id no key has.
var ErrKeyNotFound = &Error{Kind: KindNotFound, Reason: "API_KEY_NOT_FOUND", Message: "API key not found"}

// errKeysUnavailable is Authenticate's error when the keys could never be
// read from the store.
var errKeysUnavailable = &Error{Kind: KindUnavailable, Reason: "API_KEYS_UNAVAILABLE", Message: "API keys cannot be read; retry later"}

// Authenticate's refusals of tokens that name no key: shared values, so
// that refusing garbage allocates nothing. Each matches ErrUnauthenticated.
var (
	errKeyMalformed = wrap(ErrUnauthenticated, "", errors.New("api key malformed"))
	errKeyUnknown   = wrap(ErrUnauthenticated, "", errors.New("api key unknown"))
	errNameUnknown  = wrap(ErrUnauthenticated, "", errors.New("no usable api key has the certificate's name"))
	errNameTwice    = wrap(ErrUnauthenticated, "", errors.New("more than one usable api key has the certificate's name"))
)

// KeyMaker makes the random parts of API keys. The IDs given to New may
// implement it (tests do); otherwise crypto/rand makes them.
type KeyMaker interface {
	// NewKeyID returns a fresh key id: keyIDLen (12) characters of
	// a-z and 2-7.
	NewKeyID() string
	// NewKeySecret returns 256 fresh random bits.
	NewKeySecret() [32]byte
}

// KeyInput is what CreateKey needs.
type KeyInput struct {
	Name       string
	Scopes     []Scope
	SubMchIDs  []string  // empty: every sub-merchant
	ExpireTime time.Time // zero: never
	RateLimit  float64   // calls a second; 0: the deployment's default
}

func (in KeyInput) validate(now time.Time) error {
	var v violations
	v.text("name", in.Name, 64, true)
	if len(in.Scopes) == 0 {
		v.add("scopes", "is required: one or more of %s", scopeList())
	}
	for _, sc := range in.Scopes {
		if !slices.Contains(Scopes, sc) {
			v.add("scopes", "%q is not a scope; one of %s", sc, scopeList())
			break
		}
	}
	for i, id := range in.SubMchIDs {
		field := fmt.Sprintf("sub_mchids[%d]", i)
		v.token(field, id, 32, true)
		if strings.Contains(id, ",") {
			v.add(field, "must not contain ','")
		}
	}
	if !in.ExpireTime.IsZero() && !in.ExpireTime.After(now) {
		v.add("expire_time", "must be in the future")
	}
	if math.IsNaN(in.RateLimit) || math.IsInf(in.RateLimit, 0) || in.RateLimit < 0 {
		v.add("rate_limit", "must be a non-negative number of calls a second")
	}
	return v.err()
}

func scopeList() string {
	s := make([]string, len(Scopes))
	for i, sc := range Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}

// CreateKey records a new API key and returns it with its token, which
// papayd cannot show again: only its hash is kept. The token is
// "pk_<id>_<secret>". INVALID_ARGUMENT names the field at fault.
func (s *Service) CreateKey(ctx context.Context, in KeyInput) (APIKey, string, error) {
	now := s.clock.Now()
	if err := in.validate(now); err != nil {
		return APIKey{}, "", err
	}
	id, secret := s.newKeyParts()
	text := keyEncoding.EncodeToString(secret[:])
	k := StoredKey{
		APIKey: APIKey{ID: id, Name: in.Name, Scopes: slices.Clone(in.Scopes), SubMchIDs: slices.Clone(in.SubMchIDs),
			RateLimit: in.RateLimit, CreateTime: now, ExpireTime: in.ExpireTime},
		Hash: sha256.Sum256([]byte(text)),
	}
	err := s.inTx(ctx, func(tx Tx) error {
		if err := tx.CreateKey(ctx, k); err != nil {
			return err
		}
		return s.audit(ctx, tx, "CreateKey", "keys/"+id)
	})
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create key %s: %w", id, err)
	}
	s.keys.invalidate()
	s.log.InfoContext(ctx, "api key created", "key_id", id, "name", in.Name)
	return k.APIKey, keyTokenPrefix + id + "_" + text, nil
}

// newKeyParts returns a fresh id and secret.
func (s *Service) newKeyParts() (string, [32]byte) {
	if m, ok := s.ids.(KeyMaker); ok {
		return m.NewKeyID(), m.NewKeySecret()
	}
	var b [8]byte
	var secret [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	_, _ = rand.Read(secret[:])
	return keyEncoding.EncodeToString(b[:])[:keyIDLen], secret
}

// ListKeys returns every key, revoked and expired ones included, in id
// order. It never returns a secret or its hash.
func (s *Service) ListKeys(ctx context.Context) ([]APIKey, error) {
	stored, err := s.store.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]APIKey, len(stored))
	for i, k := range stored {
		keys[i] = k.APIKey
	}
	return keys, nil
}

// RevokeKey revokes the key id for good and returns it. Revoking a revoked
// key changes nothing. ErrKeyNotFound when there is none. A running papayd
// on the same database refuses the key within keyRefresh (5 s).
func (s *Service) RevokeKey(ctx context.Context, id string) (APIKey, error) {
	now := s.clock.Now()
	var k APIKey
	err := s.inTx(ctx, func(tx Tx) error {
		var err error
		if k, err = tx.RevokeKey(ctx, id, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, "RevokeKey", "keys/"+id)
	})
	if errors.Is(err, ErrNotFound) {
		err = wrap(ErrKeyNotFound, "", err)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("revoke key %q: %w", id, err)
	}
	s.keys.invalidate()
	s.log.InfoContext(ctx, "api key revoked", "key_id", id)
	return k, nil
}

// Authenticate returns the key token names when the token is a usable
// key's. Every refusal is ErrUnauthenticated (errors.Is), wrapping a detail
// for the logs (malformed, unknown, wrong secret, revoked, expired) that
// never holds the secret; a store that never answered is UNAVAILABLE.
//
// It reads an in-memory set of the keys, reloaded from the store when
// older than 5 s (one reload at a time; a failed one keeps the old set and
// is retried a second later), so refusing a token that names no key reads
// nothing and allocates nothing. The key's slices are shared: do not
// modify them. LastUsedTime is recorded at most once a minute per key, as
// the set had it when loaded.
func (s *Service) Authenticate(ctx context.Context, token string) (APIKey, error) {
	id, secret, ok := parseKeyToken(token)
	if !ok {
		return APIKey{}, errKeyMalformed
	}
	now := s.clock.Now()
	set, err := s.keys.current(ctx, now, s.loadKeys)
	if err != nil {
		return APIKey{}, err
	}
	e := set.byID[id]
	if e == nil {
		return APIKey{}, errKeyUnknown
	}
	h := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(h[:], e.hash[:]) != 1 {
		return APIKey{}, wrap(ErrUnauthenticated, "", fmt.Errorf("api key %s: wrong secret", id))
	}
	if !e.key.RevokeTime.IsZero() {
		return APIKey{}, wrap(ErrUnauthenticated, "", fmt.Errorf("api key %s: revoked", id))
	}
	if !e.key.Usable(now) {
		return APIKey{}, wrap(ErrUnauthenticated, "", fmt.Errorf("api key %s: expired", id))
	}
	s.touchKey(ctx, e, now)
	return e.key, nil
}

// AuthenticateName returns the one usable (neither revoked nor expired) key
// whose Name is name, exactly: the key of a caller that a verified client
// certificate names (mTLS). No such key, or more than one, is
// ErrUnauthenticated (errors.Is); a store that never answered is
// UNAVAILABLE. It reads the same in-memory set as Authenticate, so an
// unknown name reads nothing and allocates nothing.
func (s *Service) AuthenticateName(ctx context.Context, name string) (APIKey, error) {
	now := s.clock.Now()
	set, err := s.keys.current(ctx, now, s.loadKeys)
	if err != nil {
		return APIKey{}, err
	}
	var found *keyEntry
	for _, e := range set.byName[name] {
		if !e.key.Usable(now) {
			continue
		}
		if found != nil {
			return APIKey{}, errNameTwice
		}
		found = e
	}
	if found == nil {
		return APIKey{}, errNameUnknown
	}
	s.touchKey(ctx, found, now)
	return found.key, nil
}

// parseKeyToken splits "pk_<id>_<secret>", checking the id's alphabet and
// both lengths.
func parseKeyToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, keyTokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != keyIDLen || len(secret) != keySecretLen {
		return "", "", false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", "", false
		}
	}
	return id, secret, true
}

// touchKey records the key's use at now unless it recorded one less than
// keyTouchEvery ago.
func (s *Service) touchKey(ctx context.Context, e *keyEntry, now time.Time) {
	last, n := e.touched.Load(), now.UnixNano()
	if n-last < int64(keyTouchEvery) || !e.touched.CompareAndSwap(last, n) {
		return
	}
	if err := s.store.TouchKey(ctx, e.key.ID, now); err != nil {
		s.log.WarnContext(ctx, "api key: recording its use failed", "key_id", e.key.ID, "err", err)
	}
}

// loadKeys reads the keys for the set.
func (s *Service) loadKeys(ctx context.Context) ([]StoredKey, error) {
	keys, err := s.store.Keys(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "api keys: reload failed; serving the keys read before", "err", err)
	}
	return keys, err
}

// keySet is one immutable snapshot of the keys.
type keySet struct {
	byID   map[string]*keyEntry
	byName map[string][]*keyEntry // every key of the name, usable or not
	loaded bool                   // false until a load succeeded
	next   time.Time              // reload when the clock reaches it
}

type keyEntry struct {
	key  APIKey
	hash [32]byte
	// touched is when the key's use was last recorded, unix nanoseconds;
	// carried from one set to the next.
	touched atomic.Int64
}

// keyCache holds the current keySet and reloads it, one load at a time.
// Its zero value is an empty cache.
type keyCache struct {
	set     atomic.Pointer[keySet]
	mu      sync.Mutex
	loading chan struct{} // open while a load runs
	gen     uint64        // bumped by invalidate
}

// current returns a set no older than keyRefresh at now, loading one when
// needed; concurrent callers wait for the same load.
func (c *keyCache) current(ctx context.Context, now time.Time, load func(context.Context) ([]StoredKey, error)) (*keySet, error) {
	if set := c.set.Load(); set != nil && now.Before(set.next) {
		return set.usable()
	}
	c.mu.Lock()
	if set := c.set.Load(); set != nil && now.Before(set.next) {
		c.mu.Unlock()
		return set.usable()
	}
	if ch := c.loading; ch != nil {
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		if set := c.set.Load(); set != nil {
			return set.usable()
		}
		return nil, errKeysUnavailable
	}
	ch := make(chan struct{})
	c.loading = ch
	gen := c.gen
	c.mu.Unlock()

	keys, err := load(context.WithoutCancel(ctx))

	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.set.Load()
	var next *keySet
	switch {
	case err != nil && old != nil:
		next = &keySet{byID: old.byID, byName: old.byName, loaded: old.loaded, next: now.Add(keyRetry)}
	case err != nil:
		next = &keySet{next: now.Add(keyRetry)}
	default:
		next = &keySet{byID: make(map[string]*keyEntry, len(keys)), byName: make(map[string][]*keyEntry, len(keys)),
			loaded: true, next: now.Add(keyRefresh)}
		for _, k := range keys {
			e := &keyEntry{key: k.APIKey, hash: k.Hash}
			var t int64 // never: 1970, long enough ago
			if !k.LastUsedTime.IsZero() {
				t = k.LastUsedTime.UnixNano()
			}
			if old != nil {
				if o := old.byID[k.ID]; o != nil {
					t = max(t, o.touched.Load())
				}
			}
			e.touched.Store(t)
			next.byID[k.ID] = e
			next.byName[k.Name] = append(next.byName[k.Name], e)
		}
		if c.gen != gen { // a key changed during the load: it may lack it
			next.next = time.Time{}
		}
	}
	c.set.Store(next)
	c.loading = nil
	close(ch)
	return next.usable()
}

// usable returns set, or errKeysUnavailable when no load ever succeeded.
func (set *keySet) usable() (*keySet, error) {
	if !set.loaded {
		return nil, errKeysUnavailable
	}
	return set, nil
}

// invalidate makes the next current reload: this process changed a key.
func (c *keyCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if set := c.set.Load(); set != nil {
		c.set.Store(&keySet{byID: set.byID, byName: set.byName, loaded: set.loaded})
	}
}
