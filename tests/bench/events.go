package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// Figure 6: event latency. A StreamEvents consumer follows charge.succeeded
// live while callers create charges at the figure's concurrency (each
// succeeding at once). Per charge: from the event's create_time (stamped
// in the transaction, just before it commits; papayd and the bench share
// the clock) to the consumer's receipt, and from the CreateCharge answer
// to the receipt (negative when the event arrives first).

// eventLatency is figure 6.
type eventLatency struct {
	Answered, Received int
	// Latencies only (result.lat): receipt minus create_time, receipt
	// minus the RPC's answer.
	FromCommit, FromAnswer result
	Load                   result // the CreateCharge load that wrote them
}

const eventTargetP99 = 50 * time.Millisecond

// figureEvents measures figure 6.
func figureEvents(ctx context.Context, rep *report, p *papayd, sb *sandbox.Sandbox) error {
	o := rep.opts
	contracts, err := signAgreements(ctx, fleet{p}, sb, "oBenchEv", max(8, o.concurrency), o.concurrency)
	if err != nil {
		return err
	}
	charge := papaydCharge(fleet{p}, contracts, "EVT")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := papayv1.NewEventServiceClient(p.conn).StreamEvents(ctx, &papayv1.StreamEventsRequest{Types: []string{"charge.succeeded"}})
	if err != nil {
		return err
	}
	type receipt struct{ at, created time.Time }
	var mu sync.Mutex
	received := map[string]receipt{}
	arrived := make(chan struct{}, 1)
	streamErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				streamErr <- err
				return
			}
			at := time.Now()
			e := r.GetEvent()
			if no := e.GetCharge().GetOutTradeNo(); strings.HasPrefix(no, "EVT") {
				mu.Lock()
				received[no] = receipt{at, e.GetCreateTime().AsTime()}
				mu.Unlock()
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		}
	}()
	// The stream first replays the earlier figures' events: a warm-up
	// whose events arrive marks it live.
	var answeredMu sync.Mutex
	answered := map[string]time.Time{}
	record := func(ctx context.Context, i int) error {
		no, err := charge(ctx, i)
		if err == nil {
			answeredMu.Lock()
			answered[no] = time.Now()
			answeredMu.Unlock()
		}
		return err
	}
	warmup(ctx, o.concurrency, min(o.duration/4, time.Second), func(ctx context.Context, i int) error { _, err := charge(ctx, i); return err })
	select {
	case <-arrived:
	case err := <-streamErr:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("figure 6: the stream received no warm-up event in 30 s")
	}
	mu.Lock()
	clear(received)
	mu.Unlock()
	rep.Events.Load = measure(fleet{p}, nil, nil, func() result {
		return runLoad(ctx, "CreateCharge with a StreamEvents consumer", o.concurrency, 1_000_000, o.duration, record)
	})
	// Wait for the stragglers.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := 0
		for no := range answered {
			if _, ok := received[no]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(answered) {
			break
		}
	}
	cancel()
	if err := <-streamErr; status.Code(err) != codes.Canceled {
		return fmt.Errorf("figure 6: stream: %w", err)
	}
	ev := &rep.Events
	ev.Answered = len(answered)
	ev.FromCommit.Name, ev.FromAnswer.Name = "commit -> consumer", "answer -> consumer"
	for no, at := range answered {
		r, ok := received[no]
		if !ok {
			continue
		}
		ev.Received++
		ev.FromCommit.lat = append(ev.FromCommit.lat, r.at.Sub(r.created))
		ev.FromAnswer.lat = append(ev.FromAnswer.lat, r.at.Sub(at))
	}
	slices.Sort(ev.FromCommit.lat)
	slices.Sort(ev.FromAnswer.lat)
	logf("figure 6: %d charges answered, %d charge.succeeded received; commit -> consumer p50 %s p99 %s; answer -> consumer p50 %s p99 %s",
		ev.Answered, ev.Received, fmtDur(ev.FromCommit.Pct(50)), fmtDur(ev.FromCommit.Pct(99)),
		fmtDur(ev.FromAnswer.Pct(50)), fmtDur(ev.FromAnswer.Pct(99)))
	return nil
}

func (r *report) eventRows() []row {
	ev := r.Events
	p99 := ev.FromCommit.Pct(99)
	return []row{
		{fmt.Sprintf("6. Event latency, create_time (stamped before the group commit) to StreamEvents consumer (p50 %s; from the CreateCharge answer p50 %s, p99 %s)",
			fmtDur(ev.FromCommit.Pct(50)), fmtDur(ev.FromAnswer.Pct(50)), fmtDur(ev.FromAnswer.Pct(99))),
			fmtDur(p99) + " p99", "-", "-", "p99 < 50 ms", ev.Received > 0 && p99 < eventTargetP99},
		{fmt.Sprintf("6. charge.succeeded events received live (%.0f charges/s written)", ev.Load.Rate()),
			fmt.Sprintf("%d of %d", ev.Received, ev.Answered), "-", "-", "all", ev.Answered > 0 && ev.Received == ev.Answered},
	}
}
