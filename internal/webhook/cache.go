package webhook

import "sync"

// endpointCache holds the ids of the enabled endpoints between two reads
// of the store. Every change bumps a generation: a read that began before
// a change does not make the cache fresh, so no change is lost to a read
// under way.
type endpointCache struct {
	mu     sync.Mutex
	ids    []string
	gen    uint64 // bumped by invalidate
	filled uint64 // the generation ids were read in
	ok     bool   // ids were read at least once
}

// get returns the cached ids, the generation to hand set after reading
// the store, and whether the ids are fresh.
func (c *endpointCache) get() (ids []string, gen uint64, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids, c.gen, c.ok && c.filled == c.gen
}

// set stores ids read from the store after get returned gen; unless the
// cache was invalidated since, they are fresh.
func (c *endpointCache) set(ids []string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids, c.filled, c.ok = ids, gen, true
}

// invalidate makes the cached ids stale.
func (c *endpointCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}
