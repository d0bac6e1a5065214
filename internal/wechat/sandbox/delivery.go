package sandbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// retryDelays is WeChat Pay's papay notification schedule: after the first attempt, retry
// after these delays, then give up (10 attempts in about 4 h).
var retryDelays = [MaxAttempts - 1]time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
	30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
}

// RetryDelays returns the unscaled delays between notification attempts.
func RetryDelays() []time.Duration { return slices.Clone(retryDelays[:]) }

// MaxAttempts is how often a notification is tried before the sandbox gives up.
const MaxAttempts = 10

// refundRetryDelays is WeChat Pay Global's refund (and payment) notification schedule:
// 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, 16 attempts.
var refundRetryDelays = [RefundMaxAttempts - 1]time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// RefundMaxAttempts is how often a REFUND.* notification is tried before the sandbox
// gives up.
const RefundMaxAttempts = 16

// RefundRetryDelays returns the unscaled delays between REFUND.* notification attempts.
func RefundRetryDelays() []time.Duration { return slices.Clone(refundRetryDelays[:]) }

// scheduleFor returns the delays between the attempts of a notification of eventType.
func scheduleFor(eventType string) []time.Duration {
	if strings.HasPrefix(eventType, "REFUND.") {
		return refundRetryDelays[:]
	}
	return retryDelays[:]
}

// Delivery is one attempt to deliver a notification.
type Delivery struct {
	NotificationID string    `json:"notification_id"`
	EventType      string    `json:"event_type"`
	URL            string    `json:"url"`
	Attempt        int       `json:"attempt"`               // 1-based; 0 for a dropped notification
	StatusCode     int       `json:"status_code,omitempty"` // 0 when the request failed or was not sent
	Error          string    `json:"error,omitempty"`       // transport error, timeout, or injected fault
	Time           time.Time `json:"time"`                  // start of the attempt (Options.Now)
	Delivered      bool      `json:"delivered"`             // answered with 2xx
	Final          bool      `json:"final"`                 // delivered, or the last attempt
	// Fault is the injected fault behind the entry: lose_attempt, drop_notification, or
	// duplicate_notification on every attempt of a duplicate copy.
	Fault FaultKind `json:"fault,omitempty"`
}

// outgoing is one delivery of a notification: the original, or its duplicate copy.
type outgoing struct {
	id, eventType, url string
	body               []byte
	fault              FaultKind       // FaultDuplicateNotification for the copy
	delay              time.Duration   // delay_notification: wait before the first attempt
	gate               <-chan struct{} // the first attempt waits for it (reorder turn, original's start)
	turn               chan struct{}   // reorder: closed by the batch leader when it is this one's turn
	batch              *reorderBatch   // reorder: set on the batch leader, which releases the batch
	started            chan struct{}   // closed when the first attempt starts, or the delivery ends
	firstDone          chan struct{}   // closed when the first attempt is logged, or the delivery ends
	startedClosed      bool            // owned by the delivering goroutine
	firstDoneClosed    bool
	first              int // the attempt to make first: above 1 for a delivery resumed from the state file
}

// reorderBatch is a group of held notifications, released in reverse order.
type reorderBatch struct {
	items []*outgoing // arrival order; items[0] is the leader
	size  int
	hold  time.Duration
	full  chan struct{} // closed when size notifications are held
}

func newOutgoing(id, eventType, url string, body []byte) *outgoing {
	return &outgoing{id: id, eventType: eventType, url: url, body: body,
		started: make(chan struct{}), firstDone: make(chan struct{})}
}

func (o *outgoing) markStarted() {
	if !o.startedClosed {
		o.startedClosed = true
		close(o.started)
	}
}

func (o *outgoing) markFirstDone() {
	if !o.firstDoneClosed {
		o.firstDoneClosed = true
		close(o.firstDone)
	}
}

// notify starts delivering a notification in the background and returns its id. An
// empty URL (no termination URL configured) or a closed sandbox drops it (id "").
// subject ("contract_id", id) names what the notification is about in logs. The
// notification faults apply here (drop, duplicate, delay, reorder) and per attempt.
func (s *Sandbox) notify(url, eventType string, resource any, subject ...any) string {
	log := s.log.With(append([]any{slog.String("event_type", eventType)}, subject...)...)
	if url == "" {
		log.Warn("sandbox: no notification URL configured; notification dropped")
		return ""
	}
	if s.ctx.Err() != nil && s.store == nil {
		log.Warn("sandbox: closed; notification dropped")
		return ""
	}
	id := newNotificationID(s.now())
	body, err := s.notificationBody(eventType, id, resource)
	if err != nil {
		log.Error("sandbox: build notification", slog.Any("err", err))
		return ""
	}
	plan := s.notificationFaults(id, eventType)
	if plan.drop {
		s.record(Delivery{NotificationID: id, EventType: eventType, URL: url, Time: s.now(), Final: true,
			Fault: FaultDropNotification, Error: "not sent: notification dropped by fault injection"})
		log.Info("sandbox: notification dropped by fault injection", slog.String("id", id))
		return id
	}
	copies := 1
	if plan.duplicate {
		copies = 2
	}
	s.mu.Lock()
	kept := s.notePendingLocked(id, eventType, url, body)
	if s.closed {
		s.mu.Unlock()
		if kept {
			log.Info("sandbox: closed; notification left pending for the state file", slog.String("id", id))
			return id
		}
		log.Warn("sandbox: closed; notification dropped")
		return ""
	}
	s.inflight += copies
	s.broadcastLocked()
	s.wg.Add(copies)
	s.mu.Unlock()
	orig := newOutgoing(id, eventType, url, body)
	orig.delay = plan.delay
	if plan.reorder != nil {
		s.hold(orig, *plan.reorder)
	}
	if plan.duplicate {
		dup := newOutgoing(id, eventType, url, body)
		dup.fault, dup.gate = FaultDuplicateNotification, orig.started
		go s.deliver(dup)
	}
	go s.deliver(orig)
	return id
}

// hold adds o to the open reorder batch, or opens one with o as its leader.
func (s *Sandbox) hold(o *outgoing, rule FaultRule) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	b := s.faults.batch
	if b == nil {
		b = &reorderBatch{size: rule.Batch, hold: time.Duration(rule.HoldMS) * time.Millisecond,
			full: make(chan struct{})}
		s.faults.batch, o.batch = b, b
	} else {
		o.turn = make(chan struct{})
		o.gate = o.turn
	}
	b.items = append(b.items, o)
	if len(b.items) >= b.size {
		close(b.full)
		s.faults.batch = nil
	}
}

// releaseBatch, run by a batch leader, waits until the batch is full or its hold time
// is over, then lets the held notifications make their first attempts newest first, one
// after the other. The leader's own turn comes last. False if the sandbox closed.
func (s *Sandbox) releaseBatch(b *reorderBatch) bool {
	t := time.NewTimer(b.hold)
	defer t.Stop()
	select {
	case <-b.full:
	case <-t.C:
	case <-s.ctx.Done():
		return false
	}
	s.faults.mu.Lock()
	if s.faults.batch == b {
		s.faults.batch = nil
	}
	items := slices.Clone(b.items)
	s.faults.mu.Unlock()
	for _, o := range slices.Backward(items[1:]) {
		close(o.turn)
		select {
		case <-o.firstDone:
		case <-s.ctx.Done():
			return false
		}
	}
	return true
}

// awaitFirstAttempt waits for what holds back a notification's first attempt: its
// reorder batch or turn, the original's start (a duplicate copy), an injected delay.
// False if the sandbox closed meanwhile.
func (s *Sandbox) awaitFirstAttempt(o *outgoing) bool {
	if o.batch != nil && !s.releaseBatch(o.batch) {
		return false
	}
	if o.gate != nil {
		select {
		case <-o.gate:
		case <-s.ctx.Done():
			return false
		}
	}
	if o.delay > 0 {
		t := time.NewTimer(o.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return false
		}
	}
	o.markStarted()
	return true
}

// deliver tries a notification on the retry schedule until it is acknowledged, the
// schedule ends, or the sandbox closes.
func (s *Sandbox) deliver(o *outgoing) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.broadcastLocked()
		s.mu.Unlock()
	}()
	defer o.markFirstDone()
	defer o.markStarted()
	if !s.awaitFirstAttempt(o) {
		return
	}
	delays := scheduleFor(o.eventType)
	for attempt := max(o.first, 1); ; attempt++ {
		d := Delivery{NotificationID: o.id, EventType: o.eventType, URL: o.url, Attempt: attempt,
			Time: s.now(), Fault: o.fault}
		if s.loseAttempt(o.id, o.eventType, attempt) {
			d.Fault, d.Error = FaultLoseAttempt, "not sent: attempt lost by fault injection (no acknowledgement)"
		} else {
			status, err := s.post(o.url, o.body)
			if s.ctx.Err() != nil {
				return // closed mid-attempt: not an attempt WeChat would have made
			}
			d.StatusCode = status
			if err != nil {
				d.Error = err.Error()
			}
			d.Delivered = err == nil && status >= 200 && status < 300
		}
		d.Final = d.Delivered || attempt == len(delays)+1
		s.record(d)
		s.noteAttempt(o, attempt, d.Final)
		if attempt == 1 {
			o.markFirstDone()
		}
		s.log.Info("sandbox: notification attempt", slog.String("id", o.id),
			slog.String("event_type", o.eventType), slog.Int("attempt", attempt),
			slog.Int("status", d.StatusCode), slog.String("error", d.Error))
		if d.Final {
			return
		}
		t := time.NewTimer(s.scaled(delays[attempt-1]))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

// post makes one signed attempt: fresh timestamp and nonce, same body.
func (s *Sandbox) post(url string, body []byte) (int, error) {
	key, serial := s.signer(nil)
	h, err := SignatureHeaders(key, serial, s.now().Unix(), newNonce(), body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	maps.Copy(req.Header, h)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func (s *Sandbox) record(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries = append(s.deliveries, d)
	s.broadcastLocked()
}

// broadcastLocked wakes every waiter.
func (s *Sandbox) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Deliveries returns the log of notification attempts, oldest first.
func (s *Sandbox) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// WaitAttempts waits until at least n attempts are logged and returns the log.
func (s *Sandbox) WaitAttempts(ctx context.Context, n int) ([]Delivery, error) {
	return s.waitLog(ctx, func() bool { return len(s.deliveries) >= n })
}

// WaitDelivered waits until at least n notifications were acknowledged and returns the log.
func (s *Sandbox) WaitDelivered(ctx context.Context, n int) ([]Delivery, error) {
	return s.waitLog(ctx, func() bool {
		count := 0
		for _, d := range s.deliveries {
			if d.Delivered {
				count++
			}
		}
		return count >= n
	})
}

// WaitIdle waits until no notification is being delivered or waiting for a retry, and
// no USERPAYING order is waiting to settle.
func (s *Sandbox) WaitIdle(ctx context.Context) error {
	_, err := s.waitLog(ctx, func() bool { return s.inflight == 0 })
	return err
}

// waitLog waits until cond, evaluated under the lock, holds.
func (s *Sandbox) waitLog(ctx context.Context, cond func() bool) ([]Delivery, error) {
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		var log []Delivery
		if ok {
			log = slices.Clone(s.deliveries)
		}
		s.mu.Unlock()
		if ok {
			return log, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
