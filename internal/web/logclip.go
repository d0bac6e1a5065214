package web

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLoggedBytes bounds each logged value that comes from outside
// (headers, ids, field values, error texts quoting them).
const maxLoggedBytes = 64

// clip returns s cut to maxLoggedBytes (on a UTF-8 boundary), the cut
// marked with how many bytes were dropped: "abc…(+1234 bytes)".
func clip(s string) string { return clipTo(s, maxLoggedBytes) }

// clipError is clip for an error text, which may quote request values:
// it gets four times the room of one value.
func clipError(s string) string { return clipTo(s, 4*maxLoggedBytes) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(+" + strconv.Itoa(len(s)-n) + " bytes)"
}

// rejectionLogInterval is how often a rejected callback is logged, per
// outcome: one sample, and the count of those not logged since.
const rejectionLogInterval = 10 * time.Second

// sampler lets one event per key through per interval and counts the rest.
type sampler struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*sampled
}

type sampled struct {
	last    time.Time
	skipped int
}

func newSampler(every time.Duration, now func() time.Time) *sampler {
	return &sampler{every: every, now: now, keys: map[string]*sampled{}}
}

// sample reports whether this event of key is to be logged and, if so, how
// many of key's events were not logged since the last one that was. Keys
// are the handler's own outcome names, never values from a request, so
// the map stays small.
func (s *sampler) sample(key string) (log bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := s.keys[key]
	if k == nil {
		s.keys[key] = &sampled{last: now}
		return true, 0
	}
	if d := now.Sub(k.last); d >= 0 && d < s.every {
		k.skipped++
		return false, 0
	}
	skipped, k.last, k.skipped = k.skipped, now, 0
	return true, skipped
}
