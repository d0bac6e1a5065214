package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
)

// countingWriter counts what is logged and keeps the first lines.
type countingWriter struct {
	n     atomic.Int64
	lines atomic.Int64
	first atomic.Value
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	if w.lines.Add(1) == 1 {
		w.first.Store(string(b))
	}
	return len(b), nil
}

// TestNotifyLogFlood: forged callbacks with huge headers cannot flood the
// log: values are cut, and rejections are logged as one sample plus a
// count per interval.
func TestNotifyLogFlood(t *testing.T) {
	t.Parallel()
	w := &countingWriter{}
	log := slog.New(slog.NewTextHandler(w, nil))
	huge := strings.Repeat("S", 64<<10)
	parser := fakeParser{err: fmt.Errorf("%w: unknown serial %s", service.ErrNotificationUnauthentic, huge)}
	n := NewNotify(parser, &fakeHandler{}, nil, log)
	for range 10_000 {
		req := httptest.NewRequest(http.MethodPost, "/wechatpay/notify", strings.NewReader("{}"))
		req.Header.Set("Wechatpay-Serial", huge)
		req.Header.Set("Wechatpay-Nonce", huge)
		rec := httptest.NewRecorder()
		n.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("HTTP %d", rec.Code)
		}
	}
	if got := w.n.Load(); got >= 1<<20 {
		t.Fatalf("10,000 forged callbacks logged %d bytes (%d lines), want < 1 MiB", got, w.lines.Load())
	}
	first, _ := w.first.Load().(string)
	if !strings.Contains(first, "(+") || strings.Contains(first, huge[:1024]) {
		t.Fatalf("first line does not mark the cut: %.300s", first)
	}
}

// TestRejectionSampler: one sample per outcome per interval, with the
// count of the rejections not logged since the last sample.
func TestRejectionSampler(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	s := rpc.NewSampler(10*time.Second, func() time.Time { return now })
	var got []string
	for i := range 25 {
		if i == 12 {
			now = now.Add(11 * time.Second)
		}
		for _, outcome := range []string{"rejected_unauthentic", "rejected_malformed"} {
			if log, skipped := s.Sample(outcome); log {
				got = append(got, fmt.Sprintf("%s@%d+%d", outcome, i, skipped))
			}
		}
	}
	want := "rejected_unauthentic@0+0 rejected_malformed@0+0 rejected_unauthentic@12+11 rejected_malformed@12+11"
	if strings.Join(got, " ") != want {
		t.Fatalf("samples %v, want %s", got, want)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 100), strings.Repeat("a", 64) + "…(+36 bytes)"},
		// A cut never splits a UTF-8 sequence.
		{strings.Repeat("a", 63) + "é" + "xyz", strings.Repeat("a", 63) + "…(+5 bytes)"},
	} {
		if got := clip(tc.in); got != tc.want {
			t.Errorf("clip(%.20q…) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
