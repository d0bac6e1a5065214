package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// chargeEvent is a charge.succeeded event of sub-merchant subMchID at at.
func chargeEvent(subMchID string, at time.Time) service.Event {
	c := FullCharge("T1", "X1", base)
	c.SubMchID = subMchID
	return service.Event{Type: service.EventChargeSucceeded, CreateTime: at, SubMchID: subMchID, Charge: &c}
}

// appendEvents appends es in one transaction.
func appendEvents(t *testing.T, s service.Store, es ...service.Event) {
	t.Helper()
	inTx(t, s, func(tx service.Tx) error {
		for _, e := range es {
			if err := tx.AppendEvent(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// listEvents runs ListEvents and fails the test on error.
func listEvents(t *testing.T, s service.Store, f service.EventFilter) []service.Event {
	t.Helper()
	es, err := s.ListEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", f, err)
	}
	return es
}

// sequences returns the sequences of es.
func sequences(es []service.Event) []uint64 {
	var seqs []uint64
	for _, e := range es {
		seqs = append(seqs, e.Sequence)
	}
	return seqs
}

// seedEvents appends an agreement, a charge, an anomaly and a refund event,
// the first two in one transaction, and returns them as listed.
func seedEvents(t *testing.T, s service.Store) (want, got []service.Event) {
	t.Helper()
	a := FullAgreement("OCC1", "C1", base)
	a.SubMchID = "m1"
	c := FullCharge("T1", "X1", base)
	c.SubMchID = "m2"
	an := anomaly("T1")
	r := FullRefund("R1", "W1", base)
	r.SubMchID = "m3"
	at := time.Date(2026, 12, 1, 8, 0, 0, 7, time.UTC)
	want = []service.Event{
		// The store assigns ID and Sequence and ignores these.
		{ID: "evt_mine", Sequence: 99, Type: service.EventAgreementSigned, CreateTime: at.In(shanghai), SubMchID: "m1", Agreement: &a},
		{Type: service.EventChargeSucceeded, CreateTime: at.Add(time.Hour), SubMchID: "m2", Charge: &c},
		{Type: service.EventAnomalyDetected, CreateTime: at.Add(2 * time.Hour), SubMchID: "m2", Anomaly: &an},
		{Type: service.EventRefundSucceeded, CreateTime: at.Add(3 * time.Hour), SubMchID: "m3", Refund: &r},
	}
	appendEvents(t, s, want[0], want[1])
	appendEvents(t, s, want[2])
	appendEvents(t, s, want[3])
	got = listEvents(t, s, service.EventFilter{PageSize: 10})
	if len(got) != len(want) {
		t.Fatalf("ListEvents: %d events, want %d", len(got), len(want))
	}
	return want, got
}

func testEvents(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	want, got := seedEvents(t, s)
	ids := map[string]bool{}
	for i := range got {
		if !strings.HasPrefix(got[i].ID, "evt_") || len(got[i].ID) != 30 || got[i].ID == "evt_mine" {
			t.Errorf("event %d: id %q, want evt_ and 26 random characters of the store's", i, got[i].ID)
		}
		if ids[got[i].ID] {
			t.Errorf("event %d: id %q given twice", i, got[i].ID)
		}
		ids[got[i].ID] = true
		if got[i].Sequence != uint64(i+1) {
			t.Errorf("event %d: sequence %d, want %d: numbered from 1 in commit order", i, got[i].Sequence, i+1)
		}
		checkUTC(t, "event", map[string]time.Time{"CreateTime": got[i].CreateTime})
		want[i].ID, want[i].Sequence = got[i].ID, got[i].Sequence
		byID, err := s.EventByID(ctx, got[i].ID)
		if err != nil {
			t.Fatalf("EventByID(%s): %v", got[i].ID, err)
		}
		if diff := cmp.Diff(want[i], byID); diff != "" {
			t.Errorf("EventByID(%s) (-appended +got):\n%s", got[i].ID, diff)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListEvents (-appended +got):\n%s", diff)
	}
	_, err := s.EventByID(ctx, "evt_nope")
	checkErr(t, "EventByID of an unknown id", err, service.ErrNotFound)

	// A rolled back append leaves no trace, not even its sequence: a later
	// commit's event comes next.
	boom := errors.New("boom")
	err = s.InTx(ctx, func(tx service.Tx) error {
		if err := tx.AppendEvent(ctx, chargeEvent("m1", base)); err != nil {
			return err
		}
		return boom
	})
	checkErr(t, "InTx rolled back", err, boom)
	appendEvents(t, s, chargeEvent("m1", base))
	later := listEvents(t, s, service.EventFilter{AfterSequence: got[3].Sequence, PageSize: 10})
	if diff := cmp.Diff([]uint64{got[3].Sequence + 1}, sequences(later)); diff != "" {
		t.Errorf("events after %d, one rolled back, one committed (-want +got):\n%s", got[3].Sequence, diff)
	}
}

func testEventFilters(t *testing.T, open Opener) {
	s := open(t)
	_, got := seedEvents(t, s)
	seq := sequences(got)
	for _, tt := range []struct {
		name string
		f    service.EventFilter
		want []uint64
	}{
		{"no page size", service.EventFilter{}, seq},
		{"page size", service.EventFilter{PageSize: 2}, seq[:2]},
		{"after", service.EventFilter{AfterSequence: seq[1], PageSize: 10}, seq[2:]},
		{"after, page size", service.EventFilter{AfterSequence: seq[0], PageSize: 1}, seq[1:2]},
		{"after the last", service.EventFilter{AfterSequence: seq[3], PageSize: 10}, nil},
		{"far after the last", service.EventFilter{AfterSequence: 1 << 62, PageSize: 10}, nil},
		{"types", service.EventFilter{Types: []service.EventType{service.EventAnomalyDetected, service.EventAgreementSigned}, PageSize: 10},
			[]uint64{seq[0], seq[2]}},
		{"type of none", service.EventFilter{Types: []service.EventType{service.EventRefundCreated}, PageSize: 10}, nil},
		{"sub_mchid", service.EventFilter{SubMchID: "m2", PageSize: 10}, seq[1:3]},
		{"sub_mchid, after, page size", service.EventFilter{SubMchID: "m2", AfterSequence: seq[1], PageSize: 1}, seq[2:3]},
		{"sub_mchids", service.EventFilter{SubMchIDs: []string{"m1", "m9"}, PageSize: 10}, seq[:1]},
		{"sub_mchids, two", service.EventFilter{SubMchIDs: []string{"m3", "m1"}, PageSize: 10}, []uint64{seq[0], seq[3]}},
		{"sub_mchid in the set, and type", service.EventFilter{SubMchIDs: []string{"m1", "m2"}, SubMchID: "m2",
			Types: []service.EventType{service.EventChargeSucceeded}, PageSize: 10}, seq[1:2]},
		{"sub_mchid outside the set", service.EventFilter{SubMchIDs: []string{"m1"}, SubMchID: "m2", PageSize: 10}, nil},
	} {
		if diff := cmp.Diff(tt.want, sequences(listEvents(t, s, tt.f))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		// Without resources: the same events, each as listed with its
		// resource but for the resource.
		tt.f.WithoutResources = true
		var want []service.Event
		for _, e := range got {
			if slices.Contains(tt.want, e.Sequence) {
				e.Agreement, e.Charge, e.Anomaly, e.Refund = nil, nil, nil, nil
				want = append(want, e)
			}
		}
		if diff := cmp.Diff(want, listEvents(t, s, tt.f)); diff != "" {
			t.Errorf("%s, without resources (-want +got):\n%s", tt.name, diff)
		}
	}
}

// testEventTimeOutOfRange: an event without a create time, or at a time
// a store cannot hold, is refused.
func testEventTimeOutOfRange(t *testing.T, open Opener) {
	s := open(t)
	for _, at := range []time.Time{{}, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		err := s.InTx(t.Context(), func(tx service.Tx) error {
			return tx.AppendEvent(t.Context(), service.Event{Type: service.EventChargeCreated, CreateTime: at})
		})
		if err == nil {
			t.Errorf("AppendEvent at %v: err = nil, want an error", at)
		}
	}
	if es := listEvents(t, s, service.EventFilter{PageSize: 10}); len(es) != 0 {
		t.Errorf("events after the refused ones: %v, want none", sequences(es))
	}
}

func testPruneEvents(t *testing.T, open Opener) {
	ctx := t.Context()
	s := open(t)
	_, got := seedEvents(t, s) // created at +0, +1h, +2h, +3h
	seq := sequences(got)
	bound := got[0].CreateTime.Add(90 * time.Minute)
	for _, st := range []struct {
		limit, want int
	}{{1, 1}, {10, 1}, {10, 0}} {
		n, err := s.PruneEvents(ctx, bound, st.limit)
		if err != nil {
			t.Fatalf("PruneEvents(limit %d): %v", st.limit, err)
		}
		if n != st.want {
			t.Errorf("PruneEvents(limit %d) = %d, want %d", st.limit, n, st.want)
		}
	}
	_, err := s.EventByID(ctx, got[0].ID)
	checkErr(t, "EventByID of a pruned event", err, service.ErrNotFound)
	for _, f := range []service.EventFilter{{AfterSequence: seq[0], PageSize: 10}, {AfterSequence: seq[0], SubMchID: "nobody", PageSize: 10}} {
		_, err := s.ListEvents(ctx, f)
		checkErr(t, "ListEvents below the last pruned sequence", err, service.ErrEventCursorExpired)
	}
	for _, after := range []uint64{0, seq[1]} {
		if diff := cmp.Diff(seq[2:], sequences(listEvents(t, s, service.EventFilter{AfterSequence: after, PageSize: 10}))); diff != "" {
			t.Errorf("after %d, pruned (-want +got):\n%s", after, diff)
		}
	}
	// Every event pruned: sequences are never given twice, and old cursors
	// stay expired.
	if n, err := s.PruneEvents(ctx, bound.Add(24*time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("PruneEvents of the rest = %d, %v; want 2, nil", n, err)
	}
	appendEvents(t, s, chargeEvent("m1", base))
	es := listEvents(t, s, service.EventFilter{AfterSequence: seq[3], PageSize: 10})
	if len(es) != 1 || es[0].Sequence <= seq[3] {
		t.Errorf("after pruning every event, a new one: %v, want one after %d", sequences(es), seq[3])
	}
	_, err = s.ListEvents(ctx, service.EventFilter{AfterSequence: seq[2], PageSize: 10})
	checkErr(t, "ListEvents below the last pruned sequence, all pruned", err, service.ErrEventCursorExpired)
}

func testEventsCommitted(t *testing.T, open Opener) {
	s := open(t)
	for i := range 2 {
		ch := s.EventsCommitted()
		done := make(chan error, 1)
		go func() {
			done <- s.InTx(t.Context(), func(tx service.Tx) error { return tx.AppendEvent(t.Context(), chargeEvent("m1", base)) })
		}()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("commit %d: EventsCommitted not closed 10s after a commit that appended an event", i)
		}
		if err := <-done; err != nil {
			t.Fatalf("InTx: %v", err)
		}
	}
	// A channel taken before a commit is closed by it even when read after.
	ch := s.EventsCommitted()
	appendEvents(t, s, chargeEvent("m1", base))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("EventsCommitted taken before the commit: not closed after 10s")
	}
	if es := listEvents(t, s, service.EventFilter{PageSize: 10}); len(es) != 3 {
		t.Errorf("%d events listed, want 3", len(es))
	}
}
