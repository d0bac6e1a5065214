package app

import (
	"testing"
	"time"
)

func TestStoreBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 0, time.Second},
		{time.Second, 1, 2 * time.Second},
		{time.Second, 3, 8 * time.Second},
		{time.Second, 6, time.Minute},
		{time.Second, 1000, time.Minute},
		{2 * time.Minute, 3, 2 * time.Minute},
	} {
		if got := storeBackoff(tc.interval, tc.failures); got != tc.want {
			t.Errorf("storeBackoff(%v, %d) = %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}
