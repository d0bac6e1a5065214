package service

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// eventTypes lists the types of the events recorded after seq.
func (f *fixture) eventTypes(after uint64) []EventType {
	var out []EventType
	for _, e := range f.store.view().events {
		if e.Sequence > after {
			out = append(out, e.Type)
		}
	}
	return out
}

func (f *fixture) lastSeq() uint64 {
	es := f.store.view().events
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Sequence
}

func TestEveryTransitionAppendsOneEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	if diff := cmp.Diff([]EventType{EventAgreementCreated, EventAgreementSigned}, f.eventTypes(0)); diff != "" {
		t.Fatalf("presign and sign (-want +got):\n%s", diff)
	}
	mark := f.lastSeq()
	// A duplicate notification, a replayed charge and a refresh that
	// changes nothing append nothing.
	o, err := f.svc.HandleNotification(ctx, Notification{ID: "sign-C1", EventType: EventContractSigned,
		Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, OpenID: "oU", OperateTime: t0}})
	if err != nil || o == OutcomeApplied {
		t.Fatalf("duplicate notification: %v %v", o, err)
	}
	if got := f.eventTypes(mark); len(got) != 0 {
		t.Fatalf("duplicate notification appended %v", got)
	}

	c := f.charge(t, chargeIn("T1"))
	if diff := cmp.Diff([]EventType{EventChargeCreated, EventChargeSucceeded}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("charge (-want +got):\n%s", diff)
	}
	last := f.store.view().events[len(f.store.view().events)-1]
	if diff := cmp.Diff(c, *last.Charge); diff != "" || last.SubMchID != c.SubMchID || last.Agreement != nil {
		t.Fatalf("the snapshot is the charge as stored (-want +got):\n%s", diff)
	}
	mark = f.lastSeq()
	f.charge(t, chargeIn("T1"))
	f.wc.order = RemoteTransaction{OutTradeNo: "T1", TransactionID: "T-T1", ContractID: "W1", TradeState: TradeSuccess,
		Amount: hkd(1000), PayerTotal: 1000, PayerCurrency: "HKD", BankType: "CFT"}
	if _, err := f.svc.GetCharge(ctx, ChargeKey{OutTradeNo: "T1"}, true); err != nil {
		t.Fatal(err)
	}
	if got := f.eventTypes(mark); len(got) != 0 {
		t.Fatalf("a replay and an idle refresh appended %v", got)
	}

	// A refusal, then WeChat reports success after all: failed, then the
	// anomaly and the success.
	f.wc.deduct = func(TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{}, &RemoteError{HTTPStatus: 403, Code: "NOT_ENOUGH"}
	}
	f.charge(t, chargeIn("T2"))
	if _, err := f.svc.HandleNotification(ctx, Notification{ID: "N2", EventType: EventTransactionSuccess,
		Transaction: &RemoteTransaction{OutTradeNo: "T2", TransactionID: "X2", TradeState: TradeSuccess, Amount: hkd(1000)}}); err != nil {
		t.Fatal(err)
	}
	want := []EventType{EventChargeCreated, EventChargeFailed, EventAnomalyDetected, EventChargeSucceeded}
	if diff := cmp.Diff(want, f.eventTypes(mark)); diff != "" {
		t.Fatalf("refused then paid (-want +got):\n%s", diff)
	}
	mark = f.lastSeq()

	// Unpaid, then closed.
	f.wc.deduct = func(req TransactionRequest) (RemoteTransaction, error) {
		return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "X3", TradeState: TradeNotPay, Amount: req.Amount}, nil
	}
	f.charge(t, chargeIn("T3"))
	if _, err := f.svc.CloseCharge(ctx, "T3"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "moved away"); err != nil {
		t.Fatal(err)
	}
	want = []EventType{EventChargeCreated, EventChargeProcessing, EventChargeClosed, EventAgreementTerminated}
	if diff := cmp.Diff(want, f.eventTypes(mark)); diff != "" {
		t.Fatalf("closed and terminated (-want +got):\n%s", diff)
	}

	// Sequences rise by one, ids are unique, GetEvent answers the stored event.
	es := f.store.view().events
	for i, e := range es {
		if e.Sequence != uint64(i+1) || e.CreateTime.IsZero() || e.SubMchID != "1900000109" && e.Type != EventAnomalyDetected {
			t.Fatalf("event %d: %+v", i, e)
		}
		got, err := f.svc.GetEvent(ctx, e.ID)
		if err != nil || !cmp.Equal(e, got) {
			t.Fatalf("GetEvent(%s) = %+v, %v", e.ID, got, err)
		}
	}
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t)
	f.charge(t, chargeIn("T1"))
	es, next, err := f.svc.ListEvents(ctx, EventFilter{PageSize: 3})
	if err != nil || len(es) != 3 || next != 3 {
		t.Fatalf("first page: %d events, next %d, %v", len(es), next, err)
	}
	es, next, err = f.svc.ListEvents(ctx, EventFilter{AfterSequence: next, PageSize: 3})
	if err != nil || len(es) != 1 || next != 4 || es[0].Type != EventChargeSucceeded {
		t.Fatalf("second page: %+v, next %d, %v", es, next, err)
	}
	es, next, err = f.svc.ListEvents(ctx, EventFilter{AfterSequence: 4})
	if err != nil || len(es) != 0 || next != 4 {
		t.Fatalf("past the end: %+v, next %d, %v", es, next, err)
	}
	es, _, err = f.svc.ListEvents(ctx, EventFilter{Types: []EventType{EventChargeSucceeded, EventAgreementSigned}})
	if err != nil || len(es) != 2 || es[0].Type != EventAgreementSigned {
		t.Fatalf("by type: %+v, %v", es, err)
	}
	if _, _, err := f.svc.ListEvents(ctx, EventFilter{Types: []EventType{"charge.refunded"}}); KindOf(err) != KindInvalid {
		t.Fatalf("unknown type: %v", err)
	}

	// A key limited to another sub-merchant sees none of them.
	other := WithCaller(ctx, Caller{KeyID: "k", SubMchIDs: []string{"1900000999"}})
	if es, _, err := f.svc.ListEvents(other, EventFilter{}); err != nil || len(es) != 0 {
		t.Fatalf("another sub-merchant's key: %+v, %v", es, err)
	}
	if _, err := f.svc.GetEvent(other, "evt_1"); !errors.Is(err, ErrEventNotFound) {
		t.Fatalf("another sub-merchant's event: %v", err)
	}
	mine := WithCaller(ctx, Caller{KeyID: "k", SubMchIDs: []string{"1900000109"}})
	if es, _, err := f.svc.ListEvents(mine, EventFilter{}); err != nil || len(es) != 4 {
		t.Fatalf("own sub-merchant's key: %d events, %v", len(es), err)
	}
}

func TestEventRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := chargeFixture(t) // events 1, 2 at t0
	f.clock.advance(DefaultEventRetention)
	f.charge(t, chargeIn("T1")) // events 3, 4
	f.clock.advance(time.Second)
	r, err := f.svc.Reconcile(ctx)
	if err != nil || r.Pruned != 2 {
		t.Fatalf("reconcile: %+v, %v", r, err)
	}
	if _, _, err := f.svc.ListEvents(ctx, EventFilter{AfterSequence: 1}); !errors.Is(err, ErrEventCursorExpired) || KindOf(err) != KindOutOfRange {
		t.Fatalf("expired cursor: %v", err)
	}
	for _, after := range []uint64{0, 2} {
		if es, _, err := f.svc.ListEvents(ctx, EventFilter{AfterSequence: after}); err != nil || len(es) != 2 || es[0].Sequence != 3 {
			t.Fatalf("after %d: %+v, %v", after, es, err)
		}
	}
}

func TestStreamEventsReplaysThenFollows(t *testing.T) {
	t.Parallel()
	f := chargeFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- f.svc.StreamEvents(ctx, EventFilter{AfterSequence: 1}, func(e Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e.Sequence)
			return nil
		})
	}()
	f.charge(t, chargeIn("T1"))
	f.charge(t, chargeIn("T2"))
	want := []uint64{2, 3, 4, 5, 6}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		ok := slices.Equal(got, want)
		n := len(got)
		mu.Unlock()
		if ok {
			break
		}
		if n > len(want) || time.Now().After(deadline) {
			t.Fatalf("streamed %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.svc.StreamSubscribers() != 1 {
		t.Fatalf("subscribers = %d", f.svc.StreamSubscribers())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
	if f.svc.StreamSubscribers() != 0 {
		t.Fatalf("subscribers after the end = %d", f.svc.StreamSubscribers())
	}
}
