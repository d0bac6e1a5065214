package service

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRefundNotificationAppliedOnce: REFUND.SUCCESS delivered many times,
// some at once, changes the refund once, appends one event and counts
// the money once.
func TestRefundNotificationAppliedOnce(t *testing.T) {
	t.Parallel()
	f := refundFixture(t)
	f.refund(t, refundIn("R1", 300))
	mark := f.lastSeq()
	n := Notification{ID: "N1", SpMchID: "sp", SubMchID: "1900000109", EventType: NotificationRefundSuccess,
		Resource: []byte(`{"out_refund_no":"R1"}`), Refund: new(remoteRefund("R1", 300, "SUCCESS"))}
	var wg sync.WaitGroup
	outcomes := make([]Outcome, 8)
	for i := range outcomes {
		wg.Go(func() {
			o, err := f.svc.HandleNotification(context.Background(), n)
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
			outcomes[i] = o
		})
	}
	wg.Wait()
	count := map[Outcome]int{}
	for _, o := range outcomes {
		count[o]++
	}
	if diff := cmp.Diff(map[Outcome]int{OutcomeApplied: 1, OutcomeDuplicate: 7}, count); diff != "" {
		t.Fatalf("outcomes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]EventType{EventRefundSucceeded}, f.eventTypes(mark)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if got := f.refundedTotal(t); got != 300 {
		t.Fatalf("refunded_total %d, want 300", got)
	}
	rec := f.store.view().notifications[notificationKey(NotificationKey{SpMchID: "sp", SubMchID: "1900000109", ID: "N1"})]
	if rec.OutRefundNo != "R1" || rec.OutTradeNo != "T1" || rec.Outcome != OutcomeApplied || string(rec.Resource) != `{"out_refund_no":"R1"}` {
		t.Fatalf("record %+v", rec)
	}
	// Another notification saying the same: NOOP, nothing appended.
	if o := f.refundNotify(t, "N2", NotificationRefundSuccess, remoteRefund("R1", 300, "SUCCESS")); o != OutcomeNoop {
		t.Fatalf("same news again: %s", o)
	}
	if got := f.eventTypes(mark); len(got) != 1 {
		t.Fatalf("events %v", got)
	}
}

func TestRefundNotifications(t *testing.T) {
	t.Parallel()
	wrong := func(edit func(*RemoteRefund)) RemoteRefund {
		rr := remoteRefund("R1", 300, "SUCCESS")
		edit(&rr)
		return rr
	}
	for _, tc := range []struct {
		name    string
		prep    func(t *testing.T, f *fixture) // after R1 (300, PROCESSING)
		event   string
		rr      RemoteRefund
		outcome Outcome
		state   RefundState
		events  []EventType
		total   int64
		anomaly string
	}{
		{"by refund id", nil, NotificationRefundSuccess, wrap1(remoteRefund("", 300, "SUCCESS"), "R-R1"),
			OutcomeApplied, RefundSucceeded, []EventType{EventRefundSucceeded}, 300, ""},
		{"status from the event type", nil, NotificationRefundClosed, remoteRefund("R1", 300, ""),
			OutcomeApplied, RefundClosed, []EventType{EventRefundClosed}, 0, ""},
		{"unknown refund", nil, NotificationRefundSuccess, remoteRefund("R9", 300, "SUCCESS"),
			OutcomeUnmatched, RefundProcessing, nil, 0, ""},
		{"another amount", nil, NotificationRefundSuccess, wrong(func(rr *RemoteRefund) { rr.Refund = 301 }),
			OutcomeAnomaly, RefundProcessing, []EventType{EventAnomalyDetected}, 0, "MISMATCH"},
		{"another currency", nil, NotificationRefundSuccess, wrong(func(rr *RemoteRefund) { rr.Currency = "USD" }),
			OutcomeAnomaly, RefundProcessing, []EventType{EventAnomalyDetected}, 0, "MISMATCH"},
		{"another order total", nil, NotificationRefundSuccess, wrong(func(rr *RemoteRefund) { rr.Total = 999 }),
			OutcomeAnomaly, RefundProcessing, []EventType{EventAnomalyDetected}, 0, "MISMATCH"},
		{"another charge", nil, NotificationRefundSuccess, wrong(func(rr *RemoteRefund) { rr.OutTradeNo = "T2" }),
			OutcomeAnomaly, RefundProcessing, []EventType{EventAnomalyDetected}, 0, "MISMATCH"},
		{"another sub-merchant", nil, NotificationRefundSuccess, wrong(func(rr *RemoteRefund) { rr.SubMchID = "1900000999" }),
			OutcomeAnomaly, RefundProcessing, []EventType{EventAnomalyDetected}, 0, "MISMATCH"},
		{"SUCCESS over CLOSED: the money moved", func(t *testing.T, f *fixture) {
			f.refundNotify(t, "N0", NotificationRefundClosed, remoteRefund("R1", 300, "CLOSED"))
		}, NotificationRefundSuccess, remoteRefund("R1", 300, "SUCCESS"),
			OutcomeApplied, RefundSucceeded, []EventType{EventAnomalyDetected, EventRefundSucceeded}, 300, "FINAL_STATE_CHANGED"},
		{"CLOSED over SUCCEEDED: kept", func(t *testing.T, f *fixture) {
			f.refundNotify(t, "N0", NotificationRefundSuccess, remoteRefund("R1", 300, "SUCCESS"))
		}, NotificationRefundClosed, remoteRefund("R1", 300, "CLOSED"),
			OutcomeNoop, RefundSucceeded, nil, 300, ""},
		{"ABNORMAL over CLOSED: kept", func(t *testing.T, f *fixture) {
			f.refundNotify(t, "N0", NotificationRefundClosed, remoteRefund("R1", 300, "CLOSED"))
		}, NotificationRefundAbnormal, remoteRefund("R1", 300, "ABNORMAL"),
			OutcomeNoop, RefundClosed, nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := refundFixture(t)
			f.refund(t, refundIn("R1", 300))
			if tc.prep != nil {
				tc.prep(t, f)
			}
			before := f.storedRefund(t, "R1")
			mark, anomalies := f.lastSeq(), len(f.store.view().anomalies)
			o := f.refundNotify(t, "N1", tc.event, tc.rr)
			r := f.storedRefund(t, "R1")
			got := struct {
				Outcome Outcome
				State   RefundState
				Events  []EventType
				Total   int64
			}{o, r.State, f.eventTypes(mark), f.refundedTotal(t)}
			want := got
			want.Outcome, want.State, want.Events, want.Total = tc.outcome, tc.state, tc.events, tc.total
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			as := f.store.view().anomalies[anomalies:]
			switch {
			case tc.anomaly == "" && len(as) != 0:
				t.Fatalf("anomalies %+v", as)
			case tc.anomaly != "" && (len(as) != 1 || as[0].Kind != tc.anomaly || as[0].OutTradeNo != "T1" || as[0].NotificationID != "N1"):
				t.Fatalf("anomalies %+v, want one %s", as, tc.anomaly)
			}
			if o == OutcomeAnomaly || o == OutcomeNoop || o == OutcomeUnmatched {
				if diff := cmp.Diff(before, r); diff != "" {
					t.Fatalf("the refund changed (-before +after):\n%s", diff)
				}
			}
			// Stored whatever the outcome, with its refund number.
			rec, ok := f.store.view().notifications[notificationKey(NotificationKey{ID: "N1"})]
			if !ok || rec.Outcome != o || rec.OutRefundNo != tc.rr.OutRefundNo {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

func wrap1(rr RemoteRefund, refundID string) RemoteRefund {
	rr.RefundID = refundID
	return rr
}
