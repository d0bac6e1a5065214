package service

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// signedAtWeChat makes f's WeChat know contract W1 under out_contract_code
// C1 and plan 7, in state, and refuse a new session for C1 as the real one
// does. It returns the queries WeChat received.
func (f *fixture) signedAtWeChat(state string) func() []ContractQuery {
	var mu sync.Mutex
	var queries []ContractQuery
	rc := RemoteContract{ContractID: "W1", OutContractCode: "C1", PlanID: 7, OpenID: "oU", State: state, SignedTime: t0.Add(time.Minute)}
	if state == string(AgreementTerminated) {
		rc.TerminatedTime, rc.TerminationMode = t0.Add(30*time.Minute), TerminatedByUser
	}
	f.wc.queryFn = func(q ContractQuery) (RemoteContract, error) {
		mu.Lock()
		queries = append(queries, q)
		mu.Unlock()
		if q.ContractID == "W1" || (q.OutContractCode == "C1" && q.PlanID == 7) {
			return rc, nil
		}
		return RemoteContract{}, &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND", Message: "no such contract"}
	}
	f.wc.presignErr = &RemoteError{HTTPStatus: 400, Code: "INVALID_REQUEST", Message: "out_contract_code already used: a signed contract exists for this plan"}
	return func() []ContractQuery {
		mu.Lock()
		defer mu.Unlock()
		return queries
	}
}

// TestPresignRetryFindsTheSignature: the user signed inside WeChat, PAPAY.SIGN
// was lost and the session expired; the merchant presigns again with the
// same out_contract_code. papayd asks WeChat first, records the contract and
// refuses the presign instead of losing the agreement.
func TestPresignRetryFindsTheSignature(t *testing.T) {
	t.Parallel()
	for _, state := range []AgreementState{AgreementSigned, AgreementTerminated} {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			ctx := context.Background()
			in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
			f.presign(t, in)
			queries := f.signedAtWeChat(string(state))
			f.clock.advance(2 * time.Hour)

			_, err := f.svc.CreatePresignSession(ctx, in)
			if !errors.Is(err, ErrOutContractCodeReused) || !strings.Contains(AsError(err).Message, string(state)) {
				t.Errorf("retry: %v, want ErrOutContractCodeReused saying the agreement is %s", err, state)
			}
			want := []ContractQuery{{Merchant: Merchant{SubMchID: "1900000109", SPAppID: "wxsp", SubAppID: "wxsub"}, OutContractCode: "C1", PlanID: 7}}
			if diff := cmp.Diff(want, queries()); diff != "" {
				t.Errorf("queries (-want +got):\n%s", diff)
			}
			if n := len(f.wc.presigns); n != 1 {
				t.Errorf("%d presign calls, want 1 (no new session for a signed code)", n)
			}
			a, err := f.svc.GetAgreement(ctx, AgreementKey{ContractID: "W1"}, false)
			if err != nil {
				t.Fatalf("GetAgreement by contract id: %v", err)
			}
			if a.State != state || a.OutContractCode != "C1" || !a.SignedTime.Equal(t0.Add(time.Minute)) {
				t.Fatalf("agreement after the retry: %+v", a)
			}
			// The late PAPAY.SIGN finds its agreement.
			o, err := f.svc.HandleNotification(ctx, Notification{ID: "late-sign", EventType: EventContractSigned,
				Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, OpenID: "oU", OperateTime: t0.Add(time.Minute)}})
			if err != nil || o != OutcomeNoop {
				t.Fatalf("late PAPAY.SIGN: %v %v, want NOOP", o, err)
			}
		})
	}
}

// TestPresignRetryWhenWeChatCannotSay: the query before a retry fails; the
// presign fails as unavailable and the record is left as it was.
func TestPresignRetryWhenWeChatCannotSay(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
	f.presign(t, in)
	before, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	f.wc.queryErr = wrap(ErrWeChatUnavailable, "", errors.New("timeout"))
	f.clock.advance(2 * time.Hour)

	if _, err := f.svc.CreatePresignSession(ctx, in); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("retry: %v, want ErrWeChatUnavailable", err)
	}
	after, err := f.store.AgreementByOutContractCode(ctx, "C1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" || len(f.wc.presigns) != 1 {
		t.Fatalf("%d presign calls; the record changed (-before +after):\n%s", len(f.wc.presigns), diff)
	}
}

// TestPresignRefusedRetryKeepsTheRecord: only a first attempt that WeChat
// refused is forgotten; a refused retry keeps its PENDING record, which
// WeChat may know (the reconciler will expire it).
func TestPresignRefusedRetryKeepsTheRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refused := &RemoteError{HTTPStatus: 400, Code: "INVALID_REQUEST", Message: "the user already holds a signed contract for this plan"}
	notFound := &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND", Message: "no such contract"}
	for _, tc := range []struct {
		name  string
		first error // the first attempt's outcome at WeChat; nil: a session
	}{
		{"after an expired session", nil},
		{"after an unknown outcome", wrap(ErrWeChatUnavailable, "", errors.New("timeout"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
			f.wc.presignErr = tc.first
			if _, err := f.svc.CreatePresignSession(ctx, in); !errors.Is(err, tc.first) {
				t.Fatalf("first attempt: %v", err)
			}
			f.clock.advance(2 * time.Hour)
			f.wc.queryErr, f.wc.presignErr = notFound, refused

			_, err := f.svc.CreatePresignSession(ctx, in)
			if e := AsError(err); e.Reason != "INVALID_REQUEST" {
				t.Fatalf("refused retry: %v", err)
			}
			if n := len(f.wc.presigns); n != 2 {
				t.Fatalf("%d presign calls, want 2", n)
			}
			a, err := f.store.AgreementByOutContractCode(ctx, "C1")
			if err != nil || a.State != AgreementPending {
				t.Fatalf("a refused retry lost the record: %+v %v", a, err)
			}
			// The reconciler's query expires it once its (new) session is over.
			f.clock.advance(2 * time.Hour)
			if a, err := f.svc.GetAgreement(ctx, AgreementKey{OutContractCode: "C1", PlanID: 7}, true); err != nil || a.State != AgreementExpired {
				t.Fatalf("refresh: %+v %v", a, err)
			}
		})
	}
}

// TestPresignRetryNotSigned: WeChat knows no contract, so a retry opens a
// new session on the same record, as before.
func TestPresignRetryNotSigned(t *testing.T) {
	t.Parallel()
	f := newFixture()
	in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
	first := f.presign(t, in)
	f.wc.queryErr = &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND", Message: "no such contract"}
	f.clock.advance(2 * time.Hour)
	again := f.presign(t, in)
	if again.Session.SessionID != "session-2" || !again.Agreement.CreateTime.Equal(first.Agreement.CreateTime) ||
		again.Agreement.State != AgreementPending {
		t.Fatalf("retry = %+v", again)
	}
}

// TestPresignConcurrentAttempts: concurrent identical presigns make one
// WeChat call and share its session. (So a first attempt that WeChat refuses
// cannot race a retry of it that reached WeChat, and delete its record.)
func TestPresignConcurrentAttempts(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
	f.wc.presignHook = func() { time.Sleep(20 * time.Millisecond) } // the others arrive meanwhile
	var wg sync.WaitGroup
	outs := make([]PresignOutput, 8)
	for i := range outs {
		wg.Go(func() {
			out, err := f.svc.CreatePresignSession(ctx, in)
			if err != nil {
				t.Error(err)
			}
			outs[i] = out
		})
	}
	wg.Wait()
	if n := len(f.wc.presigns); n != 1 {
		t.Fatalf("%d presign calls, want 1", n)
	}
	for _, o := range outs[1:] {
		if diff := cmp.Diff(outs[0], o); diff != "" {
			t.Fatalf("answers differ:\n%s", diff)
		}
	}
}
