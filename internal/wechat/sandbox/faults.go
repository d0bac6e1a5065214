package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// FaultKind names an injected fault.
type FaultKind string

// Faults of API requests. They apply before the request is authenticated or routed.
const (
	// FaultLatency delays the request by DelayMS before it is handled. The request is
	// executed even if the client gives up meanwhile (its answer is then lost).
	FaultLatency FaultKind = "latency"
	// FaultSystemError answers 500 SYSTEM_ERROR (signed) without executing the request.
	FaultSystemError FaultKind = "system_error"
	// FaultRateLimit answers 429 RATELIMIT_EXCEEDED (signed) without executing.
	FaultRateLimit FaultKind = "rate_limit"
	// FaultDropConnection closes the connection without executing or answering.
	FaultDropConnection FaultKind = "drop_connection"
	// FaultLoseResponse executes the request (the deduction happens, notifications are
	// sent) and then closes the connection instead of answering.
	FaultLoseResponse FaultKind = "lose_response"
)

// Faults of notification deliveries.
const (
	// FaultLoseAttempt: one delivery attempt is not sent and counts as failed (as if
	// the merchant timed out); the retry schedule continues with the same id and body.
	FaultLoseAttempt FaultKind = "lose_attempt"
	// FaultDropNotification: the notification is never sent (WeChat gave up). The
	// delivery log gets one final entry with attempt 0.
	FaultDropNotification FaultKind = "drop_notification"
	// FaultDuplicateNotification: the notification is delivered twice, the copy
	// concurrently with the original and with its own retry schedule.
	FaultDuplicateNotification FaultKind = "duplicate_notification"
	// FaultDelayNotification: the first attempt is made DelayMS later (real time).
	FaultDelayNotification FaultKind = "delay_notification"
	// FaultReorderNotifications holds notifications and delivers them in reverse order:
	// a batch is released when Batch notifications are held or HoldMS after its first
	// one; each first attempt waits for the previous one to complete.
	FaultReorderNotifications FaultKind = "reorder_notifications"
)

// apiFaultKinds and notificationFaultKinds classify the kinds.
var (
	apiFaultKinds          = []FaultKind{FaultLatency, FaultSystemError, FaultRateLimit, FaultDropConnection, FaultLoseResponse}
	notificationFaultKinds = []FaultKind{FaultLoseAttempt, FaultDropNotification, FaultDuplicateNotification,
		FaultDelayNotification, FaultReorderNotifications}
)

// Defaults and limits of fault rules.
const (
	DefaultReorderBatch  = 2                // reorder_notifications batch without Batch or Count
	DefaultReorderHoldMS = 1000             // reorder_notifications hold without HoldMS
	maxFaultDelay        = 10 * time.Minute // latency, delay_notification, hold_ms
)

// ErrInvalidFaults reports a fault configuration SetFaults rejects.
var ErrInvalidFaults = errors.New("sandbox: invalid fault configuration")

// Faults is the fault-injection configuration: rules evaluated in order, and the seed of
// the random source of probability rules.
type Faults struct {
	// Seed seeds the math/rand/v2 sources (PCG, one per rule) that probability rules
	// draw from; SetFaults re-seeds them. A rule's decisions depend only on the seed, its
	// index and the sequence of events that reach it, so the same seed and the same
	// sequence of matching events give the same faults, whatever other rules see.
	Seed  uint64      `json:"seed,omitempty"`
	Rules []FaultRule `json:"rules"`
}

// FaultRule injects one kind of fault into matching API requests or notifications.
//
// A rule fires for the next Count matching events when only Count is set, for each
// matching event with Probability when only Probability is set, and with Probability
// at most Count times when both are. For one event, at most one rule of each kind fires,
// and for an API request at most one of system_error, rate_limit, drop_connection and
// lose_response: the first in order that fires. A rule that is not reached (an earlier
// rule already decided) neither counts the event nor draws a random number.
//
// Events: every API request for the API kinds; every notification for
// drop_notification, duplicate_notification, delay_notification and
// reorder_notifications; every delivery attempt for lose_attempt.
type FaultRule struct {
	Kind FaultKind `json:"kind"`

	// API filters, all optional: Method (e.g. "POST"), Path (exact URL path) and
	// PathPrefix. Notification filter: EventType (e.g. "TRANSACTION.SUCCESS").
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	PathPrefix string `json:"path_prefix,omitempty"`
	EventType  string `json:"event_type,omitempty"`

	Count       int     `json:"count,omitempty"`       // fire for the next Count matching events
	Probability float64 `json:"probability,omitempty"` // 0..1

	DelayMS int `json:"delay_ms,omitempty"` // latency, delay_notification (required)
	Batch   int `json:"batch,omitempty"`    // reorder_notifications: batch size (default Count, else 2)
	HoldMS  int `json:"hold_ms,omitempty"`  // reorder_notifications: longest hold (default 1000)

	// Fired is how often the rule fired since SetFaults (output only; ignored on input).
	Fired int `json:"fired"`
}

// FaultEvent is one injected fault.
type FaultEvent struct {
	Kind           FaultKind `json:"kind"`
	Rule           int       `json:"rule"`                      // index in Faults.Rules
	Method         string    `json:"method,omitempty"`          // API faults
	Path           string    `json:"path,omitempty"`            // API faults
	NotificationID string    `json:"notification_id,omitempty"` // notification faults
	EventType      string    `json:"event_type,omitempty"`      // notification faults
	Attempt        int       `json:"attempt,omitempty"`         // lose_attempt
	DelayMS        int       `json:"delay_ms,omitempty"`        // latency, delay_notification
	Time           time.Time `json:"time"`                      // Options.Now
}

// faultState is the live fault configuration and log. Its lock is a leaf: nothing else
// is locked while it is held.
type faultState struct {
	mu     sync.Mutex
	cfg    Faults
	rngs   []*rand.Rand // one source per rule
	log    []FaultEvent
	counts map[FaultKind]int
	batch  *reorderBatch // the reorder batch notifications join, if any
}

func (k FaultKind) isAPI() bool          { return slices.Contains(apiFaultKinds, k) }
func (k FaultKind) isNotification() bool { return slices.Contains(notificationFaultKinds, k) }

// normalize validates r and fills its defaults.
func (r FaultRule) normalize() (FaultRule, error) {
	bad := func(format string, args ...any) (FaultRule, error) {
		return FaultRule{}, fmt.Errorf("%w: %s: %s", ErrInvalidFaults, r.Kind, fmt.Sprintf(format, args...))
	}
	r.Fired = 0
	r.Method = strings.ToUpper(r.Method)
	switch {
	case !r.Kind.isAPI() && !r.Kind.isNotification():
		return FaultRule{}, fmt.Errorf("%w: unknown kind %q", ErrInvalidFaults, r.Kind)
	case r.Count < 0:
		return bad("count must not be negative")
	case !(r.Probability >= 0 && r.Probability <= 1):
		return bad("probability must be between 0 and 1")
	case r.Count == 0 && r.Probability == 0:
		return bad("set count, probability or both")
	case r.Kind.isAPI() && r.EventType != "":
		return bad("event_type filters notification faults only")
	case r.Kind.isNotification() && (r.Method != "" || r.Path != "" || r.PathPrefix != ""):
		return bad("method, path and path_prefix filter API faults only")
	case r.Path != "" && !strings.HasPrefix(r.Path, "/"), r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/"):
		return bad("path and path_prefix must start with /")
	case r.DelayMS < 0 || r.Batch < 0 || r.HoldMS < 0:
		return bad("delay_ms, batch and hold_ms must not be negative")
	case time.Duration(max(r.DelayMS, r.HoldMS))*time.Millisecond > maxFaultDelay:
		return bad("delay_ms and hold_ms are at most %d", maxFaultDelay.Milliseconds())
	}
	switch r.Kind {
	case FaultLatency, FaultDelayNotification:
		if r.DelayMS == 0 {
			return bad("delay_ms is required")
		}
	default:
		if r.DelayMS != 0 {
			return bad("delay_ms applies to latency and delay_notification only")
		}
	}
	if r.Kind == FaultReorderNotifications {
		if r.Batch == 0 {
			r.Batch = cmp.Or(r.Count, DefaultReorderBatch)
		}
		if r.Batch < 2 {
			return bad("batch must be at least 2")
		}
		r.HoldMS = cmp.Or(r.HoldMS, DefaultReorderHoldMS)
	} else if r.Batch != 0 || r.HoldMS != 0 {
		return bad("batch and hold_ms apply to reorder_notifications only")
	}
	return r, nil
}

// SetFaults replaces the fault configuration (firing counts restart at 0, the random
// source is re-seeded with f.Seed). The fault log is kept. Errors wrap ErrInvalidFaults.
func (s *Sandbox) SetFaults(f Faults) error {
	rules := make([]FaultRule, 0, len(f.Rules))
	for i, r := range f.Rules {
		n, err := r.normalize()
		if err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		rules = append(rules, n)
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.cfg = Faults{Seed: f.Seed, Rules: rules}
	s.faults.rngs = make([]*rand.Rand, len(rules))
	for i := range rules {
		s.faults.rngs[i] = rand.New(rand.NewPCG(f.Seed, 0x9e3779b97f4a7c15+uint64(i)))
	}
	return nil
}

// ClearFaults removes every fault rule (the log is kept).
func (s *Sandbox) ClearFaults() {
	s.SetFaults(Faults{}) // cannot fail
}

// Faults returns the fault configuration with each rule's Fired count.
func (s *Sandbox) Faults() Faults {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return Faults{Seed: s.faults.cfg.Seed, Rules: append([]FaultRule{}, s.faults.cfg.Rules...)}
}

// FaultLog returns every injected fault, oldest first.
func (s *Sandbox) FaultLog() []FaultEvent {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return append([]FaultEvent{}, s.faults.log...)
}

// FaultCount returns how many faults were injected since New.
func (s *Sandbox) FaultCount() int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return len(s.faults.log)
}

// FaultCounts returns how many faults of each kind were injected since New.
func (s *Sandbox) FaultCounts() map[FaultKind]int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	out := make(map[FaultKind]int, len(s.faults.counts))
	for k, n := range s.faults.counts {
		out[k] = n
	}
	return out
}

// fireLocked decides whether rule i fires for a matching event, and logs it if so.
func (s *Sandbox) fireLocked(i int, ev FaultEvent) bool {
	r := &s.faults.cfg.Rules[i]
	if r.Count > 0 && r.Fired >= r.Count {
		return false
	}
	if r.Probability > 0 && s.faults.rngs[i].Float64() >= r.Probability {
		return false
	}
	r.Fired++
	ev.Kind, ev.Rule, ev.Time = r.Kind, i, s.now()
	if r.Kind == FaultLatency || r.Kind == FaultDelayNotification {
		ev.DelayMS = r.DelayMS
	}
	s.faults.log = append(s.faults.log, ev)
	if s.faults.counts == nil {
		s.faults.counts = map[FaultKind]int{}
	}
	s.faults.counts[r.Kind]++
	s.log.Info("sandbox: fault injected", slog.String("kind", string(r.Kind)), slog.String("path", ev.Path),
		slog.String("notification_id", ev.NotificationID), slog.Int("attempt", ev.Attempt))
	return true
}

// apiFaults decides the faults of an API request: the added latency and the outcome
// kind ("" for none).
func (s *Sandbox) apiFaults(r *http.Request) (latency time.Duration, outcome FaultKind) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	latencyFired := false
	for i, rule := range s.faults.cfg.Rules {
		if !rule.Kind.isAPI() ||
			rule.Method != "" && rule.Method != r.Method ||
			rule.Path != "" && rule.Path != r.URL.Path ||
			rule.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, rule.PathPrefix) {
			continue
		}
		if rule.Kind == FaultLatency {
			if !latencyFired && s.fireLocked(i, FaultEvent{Method: r.Method, Path: r.URL.Path}) {
				latencyFired, latency = true, time.Duration(rule.DelayMS)*time.Millisecond
			}
			continue
		}
		if outcome == "" && s.fireLocked(i, FaultEvent{Method: r.Method, Path: r.URL.Path}) {
			outcome = rule.Kind
		}
	}
	return latency, outcome
}

// notificationPlan is what the notification faults do to one notification.
type notificationPlan struct {
	drop      bool
	duplicate bool
	delay     time.Duration
	reorder   *FaultRule // the reorder rule that fired, if any
}

// notificationFaults decides the per-notification faults of a new notification.
func (s *Sandbox) notificationFaults(id, eventType string) notificationPlan {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	var p notificationPlan
	fired := map[FaultKind]bool{}
	for i, rule := range s.faults.cfg.Rules {
		if !rule.Kind.isNotification() || rule.Kind == FaultLoseAttempt || fired[rule.Kind] ||
			rule.EventType != "" && rule.EventType != eventType {
			continue
		}
		if !s.fireLocked(i, FaultEvent{NotificationID: id, EventType: eventType}) {
			continue
		}
		fired[rule.Kind] = true
		switch rule.Kind {
		case FaultDropNotification:
			return notificationPlan{drop: true}
		case FaultDuplicateNotification:
			p.duplicate = true
		case FaultDelayNotification:
			p.delay = time.Duration(rule.DelayMS) * time.Millisecond
		case FaultReorderNotifications:
			p.reorder = &rule
		}
	}
	return p
}

// loseAttempt decides whether a delivery attempt is lost.
func (s *Sandbox) loseAttempt(id, eventType string, attempt int) bool {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	for i, rule := range s.faults.cfg.Rules {
		if rule.Kind == FaultLoseAttempt && (rule.EventType == "" || rule.EventType == eventType) &&
			s.fireLocked(i, FaultEvent{NotificationID: id, EventType: eventType, Attempt: attempt}) {
			return true
		}
	}
	return false
}

// dropConnection closes the client's connection without an answer: hijacked and closed
// where the ResponseWriter allows it, otherwise aborted with http.ErrAbortHandler.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// faultsView is the control API's view of the faults.
type faultsView struct {
	Faults
	Injected int               `json:"injected"`
	Counts   map[FaultKind]int `json:"counts"`
	Log      []FaultEvent      `json:"log"`
}

func (s *Sandbox) faultsView() faultsView {
	return faultsView{Faults: s.Faults(), Injected: s.FaultCount(), Counts: s.FaultCounts(), Log: s.FaultLog()}
}
