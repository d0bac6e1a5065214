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
	// UnpaidTimeout is how long after its last send a charge may stay
	// unpaid before the reconciler closes (reverses) it (default 30m).
	UnpaidTimeout time.Duration
	// SignedRecheck is how often a SIGNED agreement is queried again, so a
	// termination whose notification never arrived is found (default 24h).
	SignedRecheck time.Duration
	// Batch is how many due records one pass looks at, per kind (default 100).
	Batch int
	// InFlight bounds how long after it was sent a deduction may still be
	// executed by WeChat (default 2m; keep it above the WeChat call
	// deadline). A close that found no order stays CLOSING until then.
	InFlight time.Duration
	// FinalRechecks are the delays after which a record that became final
	// (a charge SUCCEEDED, FAILED or CLOSED; an EXPIRED agreement) is
	// queried again, once each, so that a wrongly final record is found by
	// papayd (default 10m, 24h).
	FinalRechecks []time.Duration
	// AbnormalRefundCheck is how often an ABNORMAL refund is queried
	// while a person resolves it in the merchant platform (default 1h).
	AbnormalRefundCheck time.Duration
	// RefundSpacing is how long after a send of one of a charge's refunds
	// the next may be sent (default RefundSpacing, WeChat's minute; a
	// shorter one only meets FREQUENCY_LIMITED, which is retried).
	RefundSpacing time.Duration
	// EventRetention is how long events are kept; each pass prunes older
	// ones (default 720h, PAPAYD_EVENT_RETENTION).
	EventRetention time.Duration
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
	if c.InFlight <= 0 {
		c.InFlight = 2 * time.Minute
	}
	if c.AbnormalRefundCheck <= 0 {
		c.AbnormalRefundCheck = time.Hour
	}
	if c.RefundSpacing <= 0 {
		c.RefundSpacing = RefundSpacing
	}
	if c.EventRetention <= 0 {
		c.EventRetention = DefaultEventRetention
	}
	if len(c.FinalRechecks) == 0 {
		c.FinalRechecks = DefaultFinalRechecks
	}
	return c
}

// DefaultFinalRechecks are the re-checks of a final record.
var DefaultFinalRechecks = []time.Duration{10 * time.Minute, 24 * time.Hour}

// recheckAfter is when a final record re-checked done times so far is next
// queried: zero (never) after the last re-check.
func (c ReconcileConfig) recheckAfter(now time.Time, done int) time.Time {
	if done >= len(c.FinalRechecks) {
		return time.Time{}
	}
	return now.Add(c.FinalRechecks[done])
}

// backoff is the wait before the next query of a record asked attempts
// times so far.
func (c ReconcileConfig) backoff(attempts int) time.Duration {
	if attempts >= len(c.Schedule) {
		attempts = len(c.Schedule) - 1
	}
	return c.Schedule[attempts]
}
