package service

import "time"

// ReconcileConfig configures the reconciler. Zero fields take the defaults.
type ReconcileConfig struct {
	// FirstCheck is how long after its creation a PENDING agreement or
	// charge is first queried (default 5s).
	FirstCheck time.Duration
	// Schedule is the backoff between later queries of an open record; the
	// last step repeats (default WeChat's own callback schedule).
	Schedule []time.Duration
	// UnpaidTimeout is how long after its creation a charge may stay unpaid
	// before the reconciler closes (reverses) it (default 30m).
	UnpaidTimeout time.Duration
	// SignedRecheck is how often a SIGNED agreement is queried again, so a
	// termination whose notification never arrived is found (default 24h).
	SignedRecheck time.Duration
	// Batch is how many due records one pass looks at, per kind (default 100).
	Batch int
}

// DefaultSchedule is WeChat's notification retry schedule: when WeChat
// would have given up notifying, papayd has asked as often.
var DefaultSchedule = []time.Duration{15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
	30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute}

func (c ReconcileConfig) withDefaults() ReconcileConfig {
	if c.FirstCheck <= 0 {
		c.FirstCheck = 5 * time.Second
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.UnpaidTimeout <= 0 {
		c.UnpaidTimeout = 30 * time.Minute
	}
	if c.SignedRecheck <= 0 {
		c.SignedRecheck = 24 * time.Hour
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	return c
}

// backoff is the wait before the next query of a record asked attempts
// times so far.
func (c ReconcileConfig) backoff(attempts int) time.Duration {
	if attempts >= len(c.Schedule) {
		attempts = len(c.Schedule) - 1
	}
	return c.Schedule[attempts]
}
