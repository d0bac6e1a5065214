package db

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/storetest"
)

var evTime = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// eventWatch reads the events as they commit, as a poller (ListEvents
// from its cursor) and as a stream (woken by EventsCommitted), and
// reports any sequence seen out of order, twice, or never.
type eventWatch struct {
	db      *DB
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	seen    [2][]uint64
	problem []string
}

func watchEvents(t *testing.T, db *DB) *eventWatch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &eventWatch{db: db, cancel: cancel}
	for reader := range 2 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			var after uint64
			for ctx.Err() == nil {
				var wake <-chan struct{}
				if reader == 1 {
					wake = db.EventsCommitted()
				}
				es, err := db.ListEvents(ctx, service.EventFilter{AfterSequence: after, PageSize: 7})
				if err != nil {
					return
				}
				w.mu.Lock()
				for _, e := range es {
					if e.Sequence <= after {
						w.problem = append(w.problem, fmt.Sprintf("reader %d: %d after %d", reader, e.Sequence, after))
					}
					after = e.Sequence
					w.seen[reader] = append(w.seen[reader], e.Sequence)
				}
				w.mu.Unlock()
				if len(es) > 0 {
					continue
				}
				if reader == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				select {
				case <-wake:
				case <-ctx.Done():
				}
			}
		}()
	}
	return w
}

// saw reports whether both readers saw seq.
func (w *eventWatch) saw(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if len(s) == 0 || s[len(s)-1] < seq {
			return false
		}
	}
	return true
}

// problems waits until the readers caught up with the table (or a
// deadline), stops them, and returns what went wrong.
func (w *eventWatch) problems(t *testing.T) []string {
	t.Helper()
	var n uint64
	if err := w.db.write.QueryRowContext(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !w.saw(n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w.cancel()
	w.wg.Wait()
	out := w.problem
	for r, s := range w.seen {
		if uint64(len(s)) != n {
			out = append(out, fmt.Sprintf("reader %d saw %d of %d events", r, len(s), n))
		}
	}
	return out
}

// TestEventsInCommitOrder: eight concurrent writers, and every sequence
// is seen by a live poller and a live stream once, in order.
// TestEventRefundResource: a refund event keeps the whole refund, stored
// under "refund" in the event's JSON, and reads back as it was appended;
// the other resources stay nil.
func TestEventRefundResource(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	r := fullRefund("R1", "W1", evTime.In(shanghai))
	want := []service.Event{
		{Type: service.EventRefundCreated, CreateTime: evTime, SubMchID: r.SubMchID, Refund: &r},
		{Type: service.EventRefundSucceeded, CreateTime: evTime.Add(time.Minute), SubMchID: r.SubMchID, Refund: &r},
	}
	inTx(t, db, func(tx service.Tx) error {
		for _, e := range want {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := db.ListEvents(ctx, service.EventFilter{PageSize: 10, Types: []service.EventType{service.EventRefundSucceeded}})
	if err != nil || len(got) != 1 {
		t.Fatalf("list refund.succeeded: %d, %v", len(got), err)
	}
	want[1].Sequence, want[1].ID = 2, got[0].ID
	if diff := cmp.Diff(want[1:], got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	byID, err := db.EventByID(ctx, got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1], byID); diff != "" {
		t.Errorf("EventByID (-want +got):\n%s", diff)
	}
	var keys string
	if err := db.read.QueryRowContext(ctx, `SELECT group_concat(key) FROM events, json_each(events.resource) WHERE sequence = 1`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != "refund" {
		t.Errorf("the resource JSON holds %q, want refund only", keys)
	}
}

func TestEventsInCommitOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	w := watchEvents(t, db)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				err := db.InTx(ctx, func(tx service.Tx) error {
					for range 1 + i%3 {
						if err := tx.AppendEvent(ctx, service.Event{Type: service.EventChargeCreated, CreateTime: evTime, SubMchID: fmt.Sprint(g)}); err != nil {
							return err
						}
					}
					if i%5 == 0 {
						return errors.New("rolled back") // its sequences are given again
					}
					return nil
				})
				if err != nil && err.Error() != "rolled back" {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if p := w.problems(t); len(p) > 0 {
		t.Fatalf("readers: %v", p)
	}
}

// TestEventsOutOfCommitOrderAreCaught removes the protection: sequences
// handed out before the writer (a counter in the caller), so that 2
// commits before 1. The watch of TestEventsInCommitOrder must notice.
func TestEventsOutOfCommitOrderAreCaught(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	w := watchEvents(t, db)
	var counter atomic.Uint64
	first, second := counter.Add(1), counter.Add(1)
	insert := func(seq uint64) { // inserts the row with a sequence of its own
		err := db.writer.do(ctx, func(t *tx) error {
			_, err := t.q.ExecContext(ctx, `INSERT INTO events (sequence, id, type, create_time, sub_mchid, resource) VALUES (?, ?, 'charge.created', 0, '', '{}')`,
				seq, fmt.Sprint("evt_", seq))
			t.appended = append(t.appended, service.Event{ID: fmt.Sprint("evt_", seq), Sequence: seq, Type: service.EventChargeCreated})
			t.sequence = int64(seq)
			return err
		})
		if err != nil {
			panic(err)
		}
	}
	insert(second)
	for !w.saw(second) {
		time.Sleep(time.Millisecond)
	}
	insert(first)
	if p := w.problems(t); len(p) == 0 {
		t.Fatal("sequences committed out of order went unnoticed")
	}
}

// TestEventListedOnceItsWriteIsSeen: a reader that sees a transaction's
// writes also lists its event (the watermark admits a batch before its
// commit; admitted after it, a reader could see the record and miss its
// event for a moment).
func TestEventListedOnceItsWriteIsSeen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	const n = 300
	done := make(chan struct{})
	var missed atomic.Int64
	go func() {
		defer close(done)
		for seen := 0; seen < n; {
			ins, err := db.OpenIntents(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if len(ins) == seen {
				continue
			}
			seen = len(ins)
			evs, err := db.ListEvents(ctx, service.EventFilter{PageSize: n + 1})
			if err != nil {
				t.Error(err)
				return
			}
			if len(evs) < seen {
				missed.Add(1)
			}
		}
	}()
	for i := range n {
		inTx(t, db, func(tx service.Tx) error {
			if _, err := tx.CreateIntent(ctx, service.Intent{Kind: service.IntentClose, Key: fmt.Sprint("T", i), CreateTime: evTime}); err != nil {
				return err
			}
			return tx.AppendEvent(ctx, service.Event{Type: service.EventChargeClosed, CreateTime: evTime})
		})
	}
	<-done
	if m := missed.Load(); m > 0 {
		t.Errorf("%d times a reader saw a transaction's intent but not its event", m)
	}
}

// TestRecentEvents: the events ListEvents takes from the writer's recent
// ones are those it decodes from the database (after a restart, when none
// is kept), unchanged by what the appender does to its records afterwards,
// and copies a reader may change.
func TestRecentEvents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "papayd.db")
	open := func() *DB {
		db, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return db
	}
	a := storetest.FullAgreement("OCC1", "C1", evTime)
	c := storetest.FullCharge("T1", "X1", evTime)
	r := storetest.FullRefund("R1", "W1", evTime)
	an := service.Anomaly{Kind: "AMOUNT_MISMATCH", OutTradeNo: "T1", NotificationID: "N1", Detail: "100 != 99", Time: evTime}
	appended := []service.Event{
		{Type: service.EventAgreementSigned, CreateTime: evTime, SubMchID: "m1", Agreement: &a},
		{Type: service.EventChargeSucceeded, CreateTime: evTime.Add(time.Second), SubMchID: "m2", Charge: &c},
		{Type: service.EventAnomalyDetected, CreateTime: evTime.Add(2 * time.Second), SubMchID: "m2", Anomaly: &an},
		{Type: service.EventRefundSucceeded, CreateTime: evTime.Add(3 * time.Second), SubMchID: "m3", Refund: &r},
	}
	list := func(db *DB) []service.Event {
		t.Helper()
		es, err := db.ListEvents(ctx, service.EventFilter{PageSize: 10})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		return es
	}
	db := open()
	if err := db.InTx(ctx, func(tx service.Tx) error {
		for _, e := range appended {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The appender goes on changing its records.
	a.State, c.PromotionDetail[0].GoodsDetail[1].GoodsID, an.Detail, r.State = service.AgreementTerminated, "changed", "changed", service.RefundFailed
	kept := list(db)
	// A reader changes what it was given.
	kept2 := list(db)
	kept2[1].Charge.PromotionDetail[0].Name, kept2[0].Agreement.PlanID = "changed", 7
	if diff := cmp.Diff(kept, list(db)); diff != "" {
		t.Errorf("ListEvents after a reader changed what it listed (-before +after):\n%s", diff)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open()
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	decoded := list(db)
	if diff := cmp.Diff(decoded, kept); diff != "" {
		t.Errorf("events kept by the writer (-decoded after a restart +kept):\n%s", diff)
	}
	// The kept events are what the reads use: with its stored resource
	// spoilt, an event appended since is still listed whole.
	if err := db.InTx(ctx, func(tx service.Tx) error { return tx.AppendEvent(ctx, appended[1]) }); err != nil {
		t.Fatal(err)
	}
	if err := db.writer.do(ctx, func(t *tx) error {
		_, err := t.q.ExecContext(ctx, `UPDATE events SET resource = '{}' WHERE sequence = 5`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	es := list(db)
	if len(es) != 5 || es[4].Charge == nil || es[4].Charge.OutTradeNo != "T1" {
		t.Errorf("event 5 listed as %+v, want its charge from the writer's recent events", es[len(es)-1])
	}
}
