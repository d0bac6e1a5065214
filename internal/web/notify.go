package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
)

// MaxNotificationBytes caps a callback body. WeChat's notifications are a
// few KiB; anything far larger is refused unread.
const MaxNotificationBytes = 64 << 10

// NotificationParser verifies and decrypts a WeChat Pay notification. It
// returns errors of kind Unauthenticated (signature, serial, timestamp) or
// Invalid (malformed, does not decrypt).
type NotificationParser interface {
	ParseContext(ctx context.Context, h http.Header, body []byte) (service.Notification, error)
}

// NotificationHandler applies a verified notification exactly once.
type NotificationHandler interface {
	HandleNotification(ctx context.Context, n service.Notification) (service.Outcome, error)
}

// NotificationObserver is told the outcome of every notification (metrics).
type NotificationObserver interface {
	Notification(eventType, outcome string, took time.Duration)
}

// Notify is the POST /wechatpay/notify handler. It answers 200
// {"code":"SUCCESS"} only after the notification's effect is committed;
// 401 when it is not authentic, 400 when it is malformed, 413 when too
// large, 500 when it could not be stored (so WeChat retries).
type Notify struct {
	parser  NotificationParser
	handler NotificationHandler
	obs     NotificationObserver
	log     *slog.Logger
	// rejected samples the logging of rejected callbacks (anyone can send
	// them, as fast as they like); the metrics count every one.
	rejected *rpc.Sampler
}

// NewNotify returns the callback handler; obs may be nil.
func NewNotify(p NotificationParser, h NotificationHandler, obs NotificationObserver, log *slog.Logger) *Notify {
	if obs == nil {
		obs = noObserver{}
	}
	return &Notify{parser: p, handler: h, obs: obs, log: log, rejected: rpc.NewSampler(rejectionLogInterval, time.Now)}
}

type noObserver struct{}

func (noObserver) Notification(string, string, time.Duration) {}

type ack struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (n *Notify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, "FAIL", "method not allowed")
		return
	}
	start := time.Now()
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	if r.ContentLength > 0 && r.ContentLength <= MaxNotificationBytes {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // ReadFrom's EOF read fits too
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxNotificationBytes))
	body := buf.Bytes() // not kept past ServeHTTP: the parser copies what it keeps
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			n.obs.Notification("", "rejected_too_large", time.Since(start))
			n.logRejected(r, "rejected_too_large", http.StatusRequestEntityTooLarge, "body too large")
			reply(w, http.StatusRequestEntityTooLarge, "FAIL", "body too large")
			return
		}
		reply(w, http.StatusBadRequest, "FAIL", "cannot read body")
		return
	}
	note, err := n.parser.ParseContext(r.Context(), r.Header, body)
	if err != nil {
		status, outcome := http.StatusBadRequest, "rejected_malformed"
		if service.KindOf(err) == service.KindUnauthenticated {
			status, outcome = http.StatusUnauthorized, "rejected_unauthentic"
		}
		n.obs.Notification(note.EventType, outcome, time.Since(start))
		// The parser's errors never carry plaintext or key material.
		n.logRejected(r, outcome, status, err.Error())
		reply(w, status, "FAIL", service.AsError(err).Message)
		return
	}
	outcome, err := n.handler.HandleNotification(r.Context(), note)
	if err != nil {
		if service.KindOf(err) == service.KindInvalid {
			n.obs.Notification(note.EventType, "rejected_malformed", time.Since(start))
			reply(w, http.StatusBadRequest, "FAIL", service.AsError(err).Message)
			return
		}
		n.obs.Notification(note.EventType, "storage_error", time.Since(start))
		n.log.ErrorContext(r.Context(), "notification not stored", "notification_id", clip(note.ID),
			"event_type", clip(note.EventType), "error", clipError(err.Error()))
		reply(w, http.StatusInternalServerError, "FAIL", "not stored; retry")
		return
	}
	n.obs.Notification(note.EventType, strings.ToLower(string(outcome)), time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ackOK)
}

// bodyBuffers hold callback bodies while they are verified and parsed.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBodyBuffer returns buf to bodyBuffers unless a large body grew it.
func putBodyBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		bodyBuffers.Put(buf)
	}
}

// maxPooledBody bounds the buffers kept for reuse: WeChat's bodies are a
// few KiB.
const maxPooledBody = 16 << 10

// ackOK is reply's body for 200 SUCCESS, encoded once.
var ackOK = func() []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(ack{Code: "SUCCESS", Message: "OK"}); err != nil {
		panic(err)
	}
	return b.Bytes()
}()

// logRejected logs a rejected callback: one sample per outcome per
// rejectionLogInterval, with the count of those not logged since, and
// every value from the request cut to maxLoggedBytes.
func (n *Notify) logRejected(r *http.Request, outcome string, status int, reason string) {
	log, skipped := n.rejected.Sample(outcome)
	if !log {
		return
	}
	n.log.WarnContext(r.Context(), "notification rejected", "outcome", outcome, "status", status,
		"error", clipError(reason), "serial", clip(r.Header.Get("Wechatpay-Serial")),
		"not_logged_since_last", skipped, "sampled_every", rejectionLogInterval)
}

func reply(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ack{Code: code, Message: msg})
}
