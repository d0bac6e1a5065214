package sandbox

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
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

// Delivery is one attempt to deliver a notification.
type Delivery struct {
	NotificationID string    `json:"notification_id"`
	EventType      string    `json:"event_type"`
	URL            string    `json:"url"`
	Attempt        int       `json:"attempt"`               // 1-based
	StatusCode     int       `json:"status_code,omitempty"` // 0 when the request failed
	Error          string    `json:"error,omitempty"`       // transport error or timeout
	Time           time.Time `json:"time"`                  // start of the attempt (Options.Now)
	Delivered      bool      `json:"delivered"`             // answered with 2xx
	Final          bool      `json:"final"`                 // delivered, or the last attempt
}

// notify starts delivering a notification in the background and returns its id. An
// empty URL (no termination URL configured) or a closed sandbox drops it (id "").
// subject ("contract_id", id) names what the notification is about in logs.
func (s *Sandbox) notify(url, eventType string, resource any, subject ...any) string {
	log := s.log.With(append([]any{slog.String("event_type", eventType)}, subject...)...)
	if url == "" {
		log.Warn("sandbox: no notification URL configured; notification dropped")
		return ""
	}
	id := newNotificationID(s.now())
	body, err := s.notificationBody(eventType, id, resource)
	if err != nil {
		log.Error("sandbox: build notification", slog.Any("err", err))
		return ""
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		log.Warn("sandbox: closed; notification dropped")
		return ""
	}
	s.inflight++
	s.broadcastLocked()
	s.wg.Add(1)
	s.mu.Unlock()
	go s.deliver(id, eventType, url, body)
	return id
}

// deliver tries a notification on the retry schedule until it is acknowledged, the
// schedule ends, or the sandbox closes.
func (s *Sandbox) deliver(id, eventType, url string, body []byte) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.broadcastLocked()
		s.mu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		d := Delivery{NotificationID: id, EventType: eventType, URL: url, Attempt: attempt, Time: s.now()}
		status, err := s.post(url, body)
		if s.ctx.Err() != nil {
			return // closed mid-attempt: not an attempt WeChat would have made
		}
		d.StatusCode = status
		if err != nil {
			d.Error = err.Error()
		}
		d.Delivered = err == nil && status >= 200 && status < 300
		d.Final = d.Delivered || attempt == MaxAttempts
		s.record(d)
		s.log.Info("sandbox: notification attempt", slog.String("id", id),
			slog.String("event_type", eventType), slog.Int("attempt", attempt),
			slog.Int("status", status), slog.String("error", d.Error))
		if d.Final {
			return
		}
		t := time.NewTimer(s.scaled(retryDelays[attempt-1]))
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
	h, err := SignatureHeaders(s.creds.PlatformKey, s.notificationSerial(), s.now().Unix(), newNonce(), body)
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
