package web

import (
	"context"
	"sync"
	"time"
)

// Readier reports whether papayd can do its work: Ready returns nil when
// the store has just committed a write, and the error that kept it from
// committing one otherwise (a full disk, a read-only file, a lock held too
// long).
type Readier interface {
	Ready(ctx context.Context) error
}

// readyCacheFor is how long one answer of the Readier is reused, so that
// probes do not each write to the disk.
const readyCacheFor = time.Second

// readiness runs the Readier at most once per readyCacheFor; concurrent
// probes wait for the one in progress.
type readiness struct {
	r   Readier
	now func() time.Time

	mu      sync.Mutex
	checked time.Time
	err     error
}

func (c *readiness) check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); !c.checked.IsZero() && now.Sub(c.checked) < readyCacheFor && now.Sub(c.checked) >= 0 {
		return c.err
	}
	c.err = c.r.Ready(ctx)
	c.checked = c.now()
	return c.err
}
