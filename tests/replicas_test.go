package tests

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// waitFor polls cond every 20 ms until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after %v", what, got, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicasEndToEnd runs an agreement's and a charge's life on two
// replicas on one PostgreSQL database, every call to the other replica
// than the one before, while WeChat's notifications reach either through
// the proxy: what one replica records, the other reads. A StreamEvents
// reader on replica-0 receives every event of both, in sequence order.
func TestReplicasEndToEnd(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 2, 0.0001, map[string]string{
		"PAPAYD_WECHATPAY_TIMEOUT": "5s",
		"PAPAYD_REFUND_SPACING":    "300ms",
	})
	a, b := rs.replicas[0], rs.replicas[1]
	ctx := context.Background()

	consumer := &streamConsumer{}
	consumerCtx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan struct{})
	go func() { defer close(consumerDone); consumer.run(consumerCtx, a.events()) }()
	defer func() { stopConsumer(); <-consumerDone }()

	const openid = "oReplicas-1"
	pre, err := a.agreements().CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: openid, UserDisplayName: "Replicas"})
	if err != nil {
		t.Fatalf("presign on %s: %v", a.name, err)
	}
	sc, err := rs.sb.SignSession(pre.GetSessionId(), sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	// PAPAY.SIGN reaches one of them; the other reads it (no refresh).
	waitFor(t, 15*time.Second, "agreement on "+b.name, func() (bool, string) {
		resp, err := b.agreements().GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: pre.GetAgreement().GetOutContractCode(), PlanId: planID})
		if err != nil {
			return false, err.Error()
		}
		ag := resp.GetAgreement()
		return ag.GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED && ag.GetContractId() == sc.ContractID, ag.String()
	})

	// The payer pays a moment later: TRANSACTION.SUCCESS settles it.
	if _, err := rs.sb.ConfigurePayer(openid, sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 300,
		RefundBehavior: sandbox.RefundBehaviorProcessing, RefundSettleAfterMS: 300}); err != nil {
		t.Fatal(err)
	}
	const no = "REPLICAS-E2E-1"
	cr, err := a.charges().CreateCharge(ctx, &papayv1.CreateChargeRequest{OutTradeNo: no, ContractId: sc.ContractID,
		Amount: &papayv1.Amount{Total: 2500, Currency: "HKD"}, Description: "Replicas-Monthly"})
	if err != nil {
		t.Fatalf("charge on %s: %v", a.name, err)
	}
	if st := cr.GetCharge().GetState(); st == papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || st.String() == "" {
		t.Fatalf("charge %s created %v, want an open state until the payer pays", no, st)
	}
	var charge *papayv1.Charge
	waitFor(t, 15*time.Second, "charge on "+b.name, func() (bool, string) {
		resp, err := b.charges().GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: no})
		if err != nil {
			return false, err.Error()
		}
		charge = resp.GetCharge()
		return charge.GetState() == papayv1.ChargeState_CHARGE_STATE_SUCCEEDED, charge.GetState().String()
	})
	if o, _ := rs.sb.Order(no); o.Deductions != 1 || o.TransactionID != charge.GetTransactionId() {
		t.Fatalf("order %s at WeChat: %d deductions, transaction %q; want 1, %q", no, o.Deductions, o.TransactionID, charge.GetTransactionId())
	}

	const refundNo = no + "-R1"
	rr, err := b.refunds().CreateRefund(ctx, &papayv1.CreateRefundRequest{OutRefundNo: refundNo, OutTradeNo: no,
		Amount: &papayv1.RefundAmount{Refund: 1000, Currency: "HKD"}, Reason: "replicas"})
	if err != nil {
		t.Fatalf("refund on %s: %v", b.name, err)
	}
	if got := rr.GetRefund().GetState(); got == papayv1.RefundState_REFUND_STATE_SUCCEEDED {
		t.Fatalf("refund %s created %v, want open until the simulator settles it", refundNo, got)
	}
	waitFor(t, 15*time.Second, "refund on "+a.name, func() (bool, string) {
		resp, err := a.refunds().GetRefund(ctx, &papayv1.GetRefundRequest{OutRefundNo: refundNo})
		if err != nil {
			return false, err.Error()
		}
		return resp.GetRefund().GetState() == papayv1.RefundState_REFUND_STATE_SUCCEEDED, resp.GetRefund().GetState().String()
	})
	gc, err := b.charges().GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: no})
	if err != nil || gc.GetCharge().GetRefundedTotal() != 1000 {
		t.Fatalf("charge %s on %s after the refund: %v %v, want refunded_total 1000", no, b.name, gc.GetCharge(), err)
	}

	term, err := a.agreements().TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: sc.ContractID, TerminationNote: "replicas"})
	if err != nil || term.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED {
		t.Fatalf("terminate on %s: %v %v", a.name, term.GetAgreement(), err)
	}
	got, err := b.agreements().GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: sc.ContractID})
	if err != nil || got.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED {
		t.Fatalf("agreement on %s after terminate: %v %v, want TERMINATED", b.name, got.GetAgreement(), err)
	}
	if w, _ := rs.sb.Contract(sc.ContractID); w.State != "TERMINATED" {
		t.Fatalf("contract at WeChat: %s, want TERMINATED", w.State)
	}
	if err := rs.sb.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs.replicas {
		if n := rs.lb.served[i].Load(); n == 0 {
			t.Errorf("%s received no notification through the proxy (served %d, %d)", r.name, rs.lb.served[0].Load(), rs.lb.served[1].Load())
		}
	}

	// Both list the same events, and the stream on replica-0 received
	// them all, in order, once each (streamConsumer.check).
	listedA, listedB := allEvents(t, a.events(), 0), allEvents(t, b.events(), 0)
	if len(listedA) != len(listedB) {
		t.Fatalf("events listed: %d on %s, %d on %s", len(listedA), a.name, len(listedB), b.name)
	}
	for i := range listedA {
		if !proto.Equal(listedA[i], listedB[i]) {
			t.Fatalf("event %d: %v on %s, %v on %s", i, listedA[i], a.name, listedB[i], b.name)
		}
	}
	line, bad := consumer.check(t, a.events(), a.charges())
	t.Log(line)
	for _, m := range bad {
		t.Error(m)
	}
	types := map[string]bool{}
	for _, e := range listedA {
		types[e.GetType()] = true
	}
	for _, want := range []string{"agreement.signed", "charge.succeeded", "refund.succeeded", "agreement.terminated"} {
		if !types[want] {
			t.Errorf("no %s event among %v", want, sortedKeys(types))
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReplicasOneDeductionPerOutTradeNo: 20 concurrent CreateCharge calls
// with the same out_trade_no, split across both replicas, while WeChat
// takes a second over each deduction, make exactly one deduction at the
// simulator, and every caller gets that charge.
func TestReplicasOneDeductionPerOutTradeNo(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 2, 0.0001, map[string]string{"PAPAYD_WECHATPAY_TIMEOUT": "10s"})
	ctx := context.Background()
	a, b := rs.replicas[0], rs.replicas[1]
	pre, err := a.agreements().CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oReplicas-2", UserDisplayName: "Replicas"})
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	sc, err := rs.sb.SignSession(pre.GetSessionId(), sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs.replicas {
		waitFor(t, 15*time.Second, "agreement on "+r.name, func() (bool, string) {
			resp, err := r.agreements().GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: sc.ContractID})
			if err != nil {
				return false, err.Error()
			}
			return resp.GetAgreement().GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED, resp.GetAgreement().GetState().String()
		})
	}
	if err := rs.sb.SetFaults(sandbox.Faults{Seed: 1, Rules: []sandbox.FaultRule{
		{Kind: sandbox.FaultLatency, Method: "POST", Path: deductPath, Probability: 1, DelayMS: 1000},
	}}); err != nil {
		t.Fatal(err)
	}

	const no, callers = "REPLICAS-ONCE-1", 20
	req := &papayv1.CreateChargeRequest{OutTradeNo: no, ContractId: sc.ContractID,
		Amount: &papayv1.Amount{Total: 1234, Currency: "HKD"}, Description: "Replicas-Monthly"}
	type answer struct {
		replica string
		charge  *papayv1.Charge
		err     error
	}
	answers := make([]answer, callers)
	startGate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		r := rs.replicas[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			resp, err := r.charges().CreateCharge(cctx, req)
			answers[i] = answer{r.name, resp.GetCharge(), err}
		}()
	}
	close(startGate)
	wg.Wait()

	if posts := rs.wx.matching("POST", deductPath); len(posts) != 1 {
		t.Errorf("deduction requests at WeChat: %d, want 1", len(posts))
	}
	if n := rs.sb.Deductions(); n != 1 {
		t.Errorf("deductions at WeChat: %d, want 1", n)
	}
	o, ok := rs.sb.Order(no)
	if !ok || o.Deductions != 1 {
		t.Fatalf("order %s at WeChat: %+v (found %v), want deducted once", no, o, ok)
	}
	var answered int
	for i, an := range answers {
		if an.err != nil {
			// Only an answer that tells the caller to try again is allowed.
			if code := grpcCode(an.err); code != codes.Unavailable && code != codes.Aborted {
				t.Errorf("caller %d on %s: %v, want the charge or a retryable error", i, an.replica, an.err)
			}
			continue
		}
		answered++
		c := an.charge
		if c.GetOutTradeNo() != no || c.GetAmount().GetTotal() != 1234 || c.GetContractId() != sc.ContractID {
			t.Errorf("caller %d on %s got %v, want charge %s", i, an.replica, c, no)
		}
		if c.GetState() == papayv1.ChargeState_CHARGE_STATE_SUCCEEDED && c.GetTransactionId() != o.TransactionID {
			t.Errorf("caller %d on %s: transaction %s, WeChat's %s", i, an.replica, c.GetTransactionId(), o.TransactionID)
		}
		if st := c.GetState(); st == papayv1.ChargeState_CHARGE_STATE_FAILED || st == papayv1.ChargeState_CHARGE_STATE_CLOSED {
			t.Errorf("caller %d on %s: charge %v", i, an.replica, st)
		}
	}
	if answered == 0 {
		t.Fatalf("no caller got the charge: %v", answers[0].err)
	}
	for _, r := range []*replica{a, b} {
		resp, err := r.charges().GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: no})
		if err != nil || resp.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED || resp.GetCharge().GetTransactionId() != o.TransactionID {
			t.Fatalf("charge %s on %s: %v %v, want SUCCEEDED %s", no, r.name, resp.GetCharge(), err, o.TransactionID)
		}
	}
	succeeded := 0
	for _, e := range allEvents(t, a.events(), 0) {
		if e.GetType() == "charge.succeeded" {
			succeeded++
		}
	}
	if succeeded != 1 {
		t.Fatalf("charge.succeeded events: %d, want 1", succeeded)
	}
}

// TestReplicasReconcilerLeases: two replicas reconcile 40 PENDING
// agreements (half of them signed at WeChat, their PAPAY.SIGN dropped)
// while WeChat answers each query in 150 ms. Each due agreement is queried
// once at its due time, by one replica: the leases of ClaimDue keep the
// other from claiming what one is working through. The next due time is a
// minute later (15 s × PAPAYD_RECONCILE_TIME_SCALE 4), past the end of the
// test.
func TestReplicasReconcilerLeases(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 2, 0.0001, map[string]string{
		"PAPAYD_WECHATPAY_TIMEOUT":     "5s",
		"PAPAYD_RECONCILE_INTERVAL":    "50ms",
		"PAPAYD_RECONCILE_FIRST_CHECK": "2s",
		"PAPAYD_RECONCILE_TIME_SCALE":  "4",
		"PAPAYD_AGREEMENT_RECHECK":     "1m",
	})
	ctx := context.Background()
	const queryPath = "/v3/global/papay/contracts/out-contract-code/"
	if err := rs.sb.SetFaults(sandbox.Faults{Seed: 2, Rules: []sandbox.FaultRule{
		{Kind: sandbox.FaultLatency, Method: "GET", PathPrefix: queryPath, Probability: 1, DelayMS: 150},
		{Kind: sandbox.FaultDropNotification, EventType: "PAPAY.SIGN", Probability: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	codes := make([]string, n)
	for i := range n {
		r := rs.replicas[i%2]
		codes[i] = fmt.Sprintf("LEASE%02d", i)
		pre, err := r.agreements().CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID,
			Openid: fmt.Sprintf("oLease-%d", i), OutContractCode: codes[i]})
		if err != nil {
			t.Fatalf("presign %s on %s: %v", codes[i], r.name, err)
		}
		if i%2 == 0 {
			if _, err := rs.sb.SignSession(pre.GetSessionId(), sandbox.User{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	perCode := func() map[string][]wxCall {
		m := map[string][]wxCall{}
		for _, c := range rs.wx.matching("GET", queryPath) {
			code := c.path[len(queryPath):]
			m[code] = append(m[code], c)
		}
		return m
	}
	waitFor(t, 20*time.Second, "every agreement queried", func() (bool, string) {
		m := perCode()
		return len(m) == n, fmt.Sprintf("%d of %d queried", len(m), n)
	})
	// Time for a second query of any of them, were it claimed twice.
	time.Sleep(2 * time.Second)
	queries := perCode()
	first := time.Now()
	for _, calls := range queries {
		if calls[0].start.Before(first) {
			first = calls[0].start
		}
	}
	if time.Since(first) > 55*time.Second {
		t.Fatalf("the agreements took %v to be queried; the next due time (60 s) may have come", time.Since(first))
	}
	for _, code := range codes {
		calls := queries[code]
		if len(calls) != 1 {
			var spans []string
			for _, c := range calls {
				spans = append(spans, fmt.Sprintf("%s..%s", c.start.Format("15:04:05.000"), c.end.Format("15:04:05.000")))
			}
			t.Errorf("agreement %s queried %d times at one due time (%v), want once", code, len(calls), spans)
		}
	}
	for i, code := range codes {
		resp, err := rs.replicas[(i+1)%2].agreements().GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID})
		want := papayv1.AgreementState_AGREEMENT_STATE_PENDING
		if i%2 == 0 {
			want = papayv1.AgreementState_AGREEMENT_STATE_SIGNED
		}
		if err != nil || resp.GetAgreement().GetState() != want {
			t.Errorf("agreement %s: %v %v, want %v", code, resp.GetAgreement().GetState(), err, want)
		}
	}
}
