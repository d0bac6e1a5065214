package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/time/rate"

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/wechat"
)

// ErrVerifyFound is Verify's error when WeChat disagrees with a record or
// a record could not be compared.
var ErrVerifyFound = errors.New("records disagree with WeChat Pay, or could not be compared")

// Verify compares every charge and agreement in papayd's database (which
// may be in use by a running papayd: it is opened read-only) with WeChat
// Pay, at most qps queries a second, changing nothing. It writes one line
// per disagreement and then "verify: N records, M mismatches" to out.
// Sandbox mode is refused: its simulated WeChat lives inside the running
// papayd.
func Verify(ctx context.Context, cfg Config, qps float64, out io.Writer, log *slog.Logger) error {
	if cfg.Mode != ModeLive {
		return errors.New("verify compares the records with WeChat Pay and needs live mode (PAPAYD_MODE=live); " +
			"in sandbox mode the simulated WeChat Pay lives inside the running papayd")
	}
	if !(qps > 0) {
		return errors.New("verify: the query rate must be positive")
	}
	records, err := openReader(ctx, cfg)
	if err != nil {
		return err
	}
	defer records.Close()
	// Never ask WeChat Pay about the records of the sandbox or of another
	// merchant.
	if err := records.CheckIdentity(ctx, ModeLive, cfg.SPMchID); err != nil {
		return err
	}
	lc, err := loadLive(cfg)
	if err != nil {
		return err
	}
	client, err := wechat.NewClient(lc.wechatConfig(cfg), logRecorder{log}, log)
	if err != nil {
		return err
	}
	limiter := rate.NewLimiter(rate.Limit(qps), 1)
	r, err := service.Verify(ctx, records, client, limiter.Wait)
	if err != nil {
		return err
	}
	for _, f := range r.Mismatches {
		fmt.Fprintln(out, "mismatch:", f)
	}
	for _, f := range r.Unverified {
		fmt.Fprintln(out, "not compared:", f)
	}
	if n := len(r.Unverified); n > 0 {
		fmt.Fprintf(out, "verify: %d records could not be compared\n", n)
	}
	fmt.Fprintf(out, "verify: %d records, %d mismatches\n", r.Records, len(r.Mismatches))
	if len(r.Mismatches) > 0 || len(r.Unverified) > 0 {
		return ErrVerifyFound
	}
	return nil
}

// logRecorder audits WeChat calls to the log only: verify writes nothing
// to the database.
type logRecorder struct{ log *slog.Logger }

func (r logRecorder) RecordWeChatCall(ctx context.Context, c service.WeChatCall) error {
	r.log.DebugContext(ctx, "wechatpay call", "method", c.Method, "path", c.Path, "status", c.HTTPStatus,
		"code", c.Code, "wechatpay_request_id", c.RequestID, "duration", c.Duration)
	return nil
}
