package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMemStoreRerunsFn: memStore.InTx runs fn a first time on a
// transaction it aborts, then again on a fresh one it commits, so a
// closure that gathers into its caller's variables without starting over
// is caught; runOnce runs it once.
func TestMemStoreRerunsFn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMemStore()
	var seen []int // gathered without being reset: what InTx's fn must not do
	err := m.InTx(ctx, func(tx Tx) error {
		seen = append(seen, len(tx.(*memTx).events))
		return tx.AppendEvent(ctx, Event{Type: EventChargeCreated})
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 0}, seen); diff != "" || m.runs.Load() != 2 {
		t.Fatalf("fn ran %d times on (-want +got):\n%s", m.runs.Load(), diff)
	}
	if n := len(m.view().events); n != 1 {
		t.Fatalf("%d events committed, want the second run's one", n)
	}

	// The first run's error does not stop the rerun; the rerun's is InTx's.
	runs := 0
	boom := errors.New("boom")
	err = m.InTx(ctx, func(tx Tx) error {
		if runs++; runs == 1 {
			return boom
		}
		return tx.AppendEvent(ctx, Event{Type: EventChargeCreated})
	})
	if err != nil || runs != 2 || len(m.view().events) != 2 {
		t.Fatalf("after a failed first run: %v, %d runs, %d events", err, runs, len(m.view().events))
	}
	runs = 0
	err = m.InTx(ctx, func(tx Tx) error {
		if runs++; runs == 2 {
			return boom
		}
		return tx.AppendEvent(ctx, Event{Type: EventChargeCreated})
	})
	if !errors.Is(err, boom) || runs != 2 || len(m.view().events) != 2 {
		t.Fatalf("a failed rerun: %v, %d runs, %d events (the first run's committed?)", err, runs, len(m.view().events))
	}

	once := newMemStore()
	once.runOnce = true
	seen = nil
	if err := once.InTx(ctx, func(Tx) error { seen = append(seen, 0); return nil }); err != nil || len(seen) != 1 {
		t.Fatalf("runOnce: %v, %d runs", err, len(seen))
	}
}

// rerunFixture is newFixture with a memStore that runs fn once if once is
// set (as SQLite does), and a logger writing to the returned buffer
// without times.
func rerunFixture(once bool) (*fixture, *bytes.Buffer) {
	f := newFixture()
	f.store.runOnce = once
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	f.svc = New(f.svc.cfg, f.store, f.wc, f.clock, &seqIDs{}, log)
	f.svc.cfg.MerchantCategoryCode = "5812"
	return f, &logs
}

// TestRerunChangesNothing runs the same use cases on a store that runs
// each transaction's fn once and on one that runs it twice (the first run
// aborted): a charge, its payment notification and a duplicate, a refund
// and its notification, a notification WeChat and the record disagree on,
// one for an unknown charge. Both record the same rows, the same events
// (one per change), the same audit entries, and log the same lines.
func TestRerunChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run := func(once bool) (*fixture, string) {
		f, logs := rerunFixture(once)
		f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
		f.sign(t, "C1", "W1")
		f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
			return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
		}
		if c := f.charge(t, chargeIn("T1")); c.State != ChargePending {
			t.Fatalf("T1 %s", c.State)
		}
		paid := RemoteTransaction{OutTradeNo: "T1", TransactionID: "T-T1", ContractID: "W1", TradeState: TradeSuccess,
			Amount: hkd(1000), PayerTotal: 1000, PayerCurrency: "HKD", BankType: "CFT"}
		for _, id := range []string{"n-paid", "n-paid"} {
			if _, err := f.svc.HandleNotification(ctx, Notification{ID: id, EventType: EventTransactionSuccess, Transaction: &paid}); err != nil {
				t.Fatal(err)
			}
		}
		wrong := paid
		wrong.Amount = hkd(999)
		if o, err := f.svc.HandleNotification(ctx, Notification{ID: "n-wrong", EventType: EventTransactionSuccess, Transaction: &wrong}); err != nil || o != OutcomeAnomaly {
			t.Fatalf("mismatch: %s %v", o, err)
		}
		unknown := paid
		unknown.OutTradeNo, unknown.TransactionID = "T9", "T-T9"
		if o, err := f.svc.HandleNotification(ctx, Notification{ID: "n-unknown", EventType: EventTransactionSuccess, Transaction: &unknown}); err != nil || o != OutcomeUnmatched {
			t.Fatalf("unknown charge: %s %v", o, err)
		}
		if r := f.refund(t, refundIn("R1", 100)); r.State != RefundProcessing {
			t.Fatalf("R1 %s", r.State)
		}
		if o := f.refundNotify(t, "n-refund", NotificationRefundSuccess, remoteRefund("R1", 100, RefundStatusSuccess)); o != OutcomeApplied {
			t.Fatalf("refund notification: %s", o)
		}
		return f, logs.String()
	}
	once, onceLogs := run(true)
	twice, twiceLogs := run(false)

	if got, want := twice.store.runs.Load(), 2*once.store.runs.Load(); got != want || want == 0 {
		t.Fatalf("fn ran %d times, want twice the %d of runOnce", got, want/2)
	}
	if diff := cmp.Diff(once.store.view().memState, twice.store.view().memState, cmp.AllowUnexported(memState{}, memWebhooks{})); diff != "" {
		t.Fatalf("recorded state (-once +twice):\n%s", diff)
	}
	wantEvents := []EventType{EventAgreementCreated, EventAgreementSigned, EventChargeCreated, EventChargeSucceeded,
		EventAnomalyDetected, EventRefundCreated, EventRefundSucceeded}
	if diff := cmp.Diff(wantEvents, twice.eventTypes(0)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(strings.Split(onceLogs, "\n"), strings.Split(twiceLogs, "\n")); diff != "" {
		t.Fatalf("logs (-once +twice):\n%s", diff)
	}
	for _, line := range []string{"ANOMALY: WeChat disagrees with the recorded charge", "notification for an unknown charge"} {
		if n := strings.Count(twiceLogs, line); n != 1 {
			t.Errorf("%q logged %d times, want once", line, n)
		}
	}
}

// TestRerunFindsTheChargePaid: a resend of a charge whose first answer
// was lost, whose transaction is rerun after a concurrent notification
// paid the charge, does not send the deduction again.
func TestRerunFindsTheChargePaid(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, wrap(ErrWeChatUnavailable, "", context.DeadlineExceeded)
	}
	if c := f.charge(t, chargeIn("T1")); c.State != ChargePending {
		t.Fatalf("T1 %s", c.State)
	}
	f.wc.deduct = nil
	f.store.beforeRerun(func(st *memState) {
		c := st.charges["T1"]
		c.State, c.TradeState, c.TransactionID = ChargeSucceeded, TradeSuccess, "T-T1"
		st.charges["T1"] = c
	})
	if c := f.charge(t, chargeIn("T1")); c.State != ChargeSucceeded {
		t.Fatalf("T1 answered %s", c.State)
	}
	if n := len(f.wc.deductions); n != 1 {
		t.Fatalf("%d deductions: the rerun that found T1 paid sent it again", n)
	}
}

// TestRerunFindsTheRefundSent: the reconciler's send of a PENDING refund,
// whose transaction is rerun after another replica sent the refund, does
// not send it again.
func TestRerunFindsTheRefundSent(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	f.refund(t, refundIn("R1", 100))
	f.clock.advance(10 * time.Second)
	if r := f.refund(t, refundIn("R2", 200)); r.State != RefundPending || r.Attempts != 0 {
		t.Fatalf("R2 waits for the spacing: %+v", r)
	}
	f.clock.advance(time.Minute)
	f.store.beforeRerun(func(st *memState) {
		r := st.refunds["R2"]
		r.State, r.Attempts, r.LastSendTime = RefundProcessing, 1, f.clock.Now()
		st.refunds["R2"] = r
	})
	if err := f.svc.reconcileRefund(context.Background(), "R2"); err != nil {
		t.Fatal(err)
	}
	for _, req := range f.refundSends() {
		if req.OutRefundNo == "R2" {
			t.Fatal("the rerun that found R2 sent sent it again")
		}
	}
}
