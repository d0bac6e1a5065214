package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/papayd/papayd/internal/service"
)

type fakeParser struct {
	n   service.Notification
	err error
}

func (f fakeParser) ParseContext(context.Context, http.Header, []byte) (service.Notification, error) {
	return f.n, f.err
}

type fakeHandler struct {
	err   error
	calls int
}

func (f *fakeHandler) HandleNotification(context.Context, service.Notification) (service.Outcome, error) {
	f.calls++
	return service.OutcomeApplied, f.err
}

func TestNotifyStatuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		parseErr   error
		handleErr  error
		body       string
		status     int
		code       string
		wantHandle bool
	}{
		{"applied", nil, nil, "{}", 200, "SUCCESS", true},
		{"unauthentic", fmt.Errorf("%w: unknown serial", service.ErrNotificationUnauthentic), nil, "{}", 401, "FAIL", false},
		{"malformed", fmt.Errorf("%w: bad nonce", service.ErrNotificationMalformed), nil, "{}", 400, "FAIL", false},
		{"storage fails", nil, errors.New("disk I/O error"), "{}", 500, "FAIL", true},
		{"handler says invalid", nil, service.ErrNotificationMalformed, "{}", 400, "FAIL", true},
		{"too large", nil, nil, strings.Repeat("x", MaxNotificationBytes+1), 413, "FAIL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &fakeHandler{err: tc.handleErr}
			n := NewNotify(fakeParser{n: service.Notification{ID: "EV1"}, err: tc.parseErr}, h, nil, slog.New(slog.DiscardHandler))
			rec := httptest.NewRecorder()
			n.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wechatpay/notify", strings.NewReader(tc.body)))
			var ack map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &ack); err != nil {
				t.Fatalf("answer %q is not JSON: %v", rec.Body.String(), err)
			}
			if rec.Code != tc.status || ack["code"] != tc.code || ack["message"] == "" {
				t.Fatalf("HTTP %d %v, want %d %s", rec.Code, ack, tc.status, tc.code)
			}
			if (h.calls > 0) != tc.wantHandle {
				t.Fatalf("handler called %d times", h.calls)
			}
			// A storage error's text never reaches WeChat.
			if strings.Contains(rec.Body.String(), "disk") {
				t.Fatalf("internal error leaked: %s", rec.Body.String())
			}
		})
	}
}

func TestNotifyRejectsOtherMethods(t *testing.T) {
	t.Parallel()
	n := NewNotify(fakeParser{}, &fakeHandler{}, nil, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	n.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wechatpay/notify", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d", rec.Code)
	}
	_, _ = io.Copy(io.Discard, rec.Body)
}
