package service

import (
	"context"
	"sync"
)

// lock locks key in this process, then across every process on the store
// (Store.LockKey), and returns the unlock function of both, or ctx's error
// if ctx ends first (nothing is then locked).
func (s *Service) lock(ctx context.Context, key string) (unlock func(), err error) {
	local, err := s.locks.lock(ctx, key)
	if err != nil {
		return nil, err
	}
	shared, err := s.store.LockKey(ctx, key)
	if err != nil {
		local()
		return nil, err
	}
	return func() {
		shared()
		local()
	}, nil
}

// keyedMutex is a set of mutexes created on demand, one per key, and
// dropped when nobody holds or waits for them.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	held  chan struct{} // a token while the key is locked
	users int           // holders and waiters
}

// lock locks key and returns its unlock function, or ctx's error if ctx
// ends first (the key is then not locked).
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{held: make(chan struct{}, 1)}
		k.locks[key] = e
	}
	e.users++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		e.users--
		if e.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case e.held <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	return func() {
		<-e.held
		release()
	}, nil
}
