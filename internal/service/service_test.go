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

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

type fixture struct {
	svc   *Service
	store *memStore
	wc    *fakeWeChat
	clock *fakeClock
}

func newFixture() *fixture {
	f := &fixture{store: newMemStore(), wc: &fakeWeChat{}, clock: &fakeClock{now: t0}}
	f.svc = New(Config{SubMchID: "1900000109", SPAppID: "wxsp", SubAppID: "wxsub", NotifyURL: "https://papayd.example/wechatpay/notify", SessionTTL: time.Hour},
		f.store, f.wc, f.clock, &seqIDs{}, nil)
	return f
}

func (f *fixture) presign(t *testing.T, in PresignInput) PresignOutput {
	t.Helper()
	out, err := f.svc.CreatePresignSession(context.Background(), in)
	if err != nil {
		t.Fatalf("CreatePresignSession: %v", err)
	}
	return out
}

func (f *fixture) sign(t *testing.T, code, contractID string) {
	t.Helper()
	o, err := f.svc.HandleNotification(context.Background(), Notification{ID: "sign-" + code, EventType: EventContractSigned,
		Contract: &ContractEvent{OutContractCode: code, ContractID: contractID, PlanID: 7, OpenID: "oU", OperateTime: t0}})
	if err != nil || o != OutcomeApplied {
		t.Fatalf("sign notification: %v %v", o, err)
	}
}

func TestPresignDefaultsAndRecordsPending(t *testing.T) {
	t.Parallel()
	f := newFixture()
	out := f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", UserDisplayName: "Chan"})
	want := Agreement{
		OutContractCode: "GEN0001", PlanID: 7, Merchant: Merchant{SubMchID: "1900000109", SPAppID: "wxsp", SubAppID: "wxsub"},
		OpenID: "oU", UserDisplayName: "Chan", Channel: ChannelMiniProgram, State: AgreementPending,
		SessionExpireTime: t0.Add(time.Hour), Session: PresignResult{SessionID: "session-1"}, CreateTime: t0, UpdateTime: t0,
		NextCheckTime: t0.Add(5 * time.Second),
	}
	if diff := cmp.Diff(want, out.Agreement); diff != "" {
		t.Fatalf("agreement (-want +got):\n%s", diff)
	}
	stored, err := f.store.AgreementByOutContractCode(context.Background(), "GEN0001")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Fatalf("stored (-want +got):\n%s", diff)
	}
	if got := f.wc.presigns[0]; got.SuccessNotifyURL != "https://papayd.example/wechatpay/notify" || got.ExpireTime != t0.Add(time.Hour) || got.OutContractCode != "GEN0001" {
		t.Fatalf("presign request = %+v", got)
	}
}

func TestPresignValidation(t *testing.T) {
	t.Parallel()
	ok := PresignInput{PlanID: 7, OpenID: "oU", UserDisplayName: "Chan", OutContractCode: "C1"}
	for _, tc := range []struct {
		name  string
		edit  func(*PresignInput)
		field string
	}{
		{"plan missing", func(in *PresignInput) { in.PlanID = 0 }, "plan_id"},
		{"plan negative", func(in *PresignInput) { in.PlanID = -3 }, "plan_id"},
		{"code too long", func(in *PresignInput) { in.OutContractCode = strings.Repeat("a", 33) }, "out_contract_code"},
		{"code charset", func(in *PresignInput) { in.OutContractCode = "a b" }, "out_contract_code"},
		{"openid required", func(in *PresignInput) { in.OpenID = "" }, "openid"},
		{"openid too long", func(in *PresignInput) { in.OpenID = strings.Repeat("o", 129) }, "openid"},
		{"name too long", func(in *PresignInput) { in.UserDisplayName = strings.Repeat("名", 33) }, "user_display_name"},
		{"name emoji", func(in *PresignInput) { in.UserDisplayName = "Chan 😀" }, "user_display_name"},
		{"sub_mchid too long", func(in *PresignInput) { in.SubMchID = strings.Repeat("1", 33) }, "sub_mchid"},
		{"sp_appid space", func(in *PresignInput) { in.SPAppID = "wx sp" }, "sp_appid"},
		{"bad ip", func(in *PresignInput) { in.UserClientIP = "300.1.1.1" }, "user_client_ip"},
		{"h5 needs ip", func(in *PresignInput) { in.Channel = ChannelH5; in.OpenID = "" }, "user_client_ip"},
		{"bad return url", func(in *PresignInput) { in.Channel = ChannelWeb; in.ReturnURL = "ftp://x" }, "return_url"},
		{"return url on mini program", func(in *PresignInput) { in.ReturnURL = "https://m.example/back" }, "return_url"},
		{"return appid off H5", func(in *PresignInput) { in.ReturnAppID = "wxapp" }, "return_appid"},
		{"expired session", func(in *PresignInput) { in.SessionExpireTime = t0.Add(-time.Second) }, "session_expire_time"},
		{"unknown channel", func(in *PresignInput) { in.Channel = "FAX" }, "channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			in := ok
			tc.edit(&in)
			_, err := f.svc.CreatePresignSession(context.Background(), in)
			e := AsError(err)
			if e.Kind != KindInvalid || len(e.Violations) == 0 || e.Violations[0].Field != tc.field {
				t.Fatalf("err = %v (violations %+v), want invalid %s", err, e.Violations, tc.field)
			}
			if len(f.wc.presigns) != 0 || len(f.store.state.agreements) != 0 {
				t.Fatal("an invalid request reached WeChat or the store")
			}
		})
	}
}

func TestPresignIdempotency(t *testing.T) {
	t.Parallel()
	f := newFixture()
	in := PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"}
	first := f.presign(t, in)
	again := f.presign(t, in)
	if diff := cmp.Diff(first, again); diff != "" || len(f.wc.presigns) != 1 {
		t.Fatalf("retry made %d WeChat calls; diff:\n%s", len(f.wc.presigns), diff)
	}
	other := in
	other.OpenID = "oOther"
	if _, err := f.svc.CreatePresignSession(context.Background(), other); !errors.Is(err, ErrOutContractCodeReused) {
		t.Fatalf("reuse with other parameters: %v, want ErrOutContractCodeReused", err)
	}
	// An expired session is asked for again with the same code.
	f.clock.advance(2 * time.Hour)
	renewed := f.presign(t, in)
	if renewed.Session.SessionID != "session-2" || !renewed.Agreement.SessionExpireTime.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("renewed session = %+v", renewed)
	}
	// A signed agreement's code cannot be presigned again.
	f.sign(t, "C1", "W1")
	if _, err := f.svc.CreatePresignSession(context.Background(), in); !errors.Is(err, ErrOutContractCodeReused) {
		t.Fatalf("presign of a signed code: %v", err)
	}
}

func TestPresignWeChatOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture()
	f.wc.presignErr = &RemoteError{HTTPStatus: 400, Code: "PARAM_ERROR", Message: "bad openid", Field: "openid"}
	_, err := f.svc.CreatePresignSession(context.Background(), PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	e := AsError(err)
	if e.Kind != KindInvalid || e.Reason != "PARAM_ERROR" || len(e.Violations) != 1 || e.Violations[0].Field != "openid" {
		t.Fatalf("refusal = %+v", e)
	}
	if _, err := f.store.AgreementByOutContractCode(context.Background(), "C1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused presign left a record: %v", err)
	}

	f.wc.presignErr = wrap(ErrWeChatUnavailable, "", errors.New("timeout"))
	_, err = f.svc.CreatePresignSession(context.Background(), PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C2"})
	if !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("timeout = %v, want ErrWeChatUnavailable", err)
	}
	a, err := f.store.AgreementByOutContractCode(context.Background(), "C2")
	if err != nil || a.State != AgreementPending {
		t.Fatalf("an unknown outcome must keep the pending record: %+v %v", a, err)
	}
	// The retry with the same code goes through.
	f.wc.presignErr = nil
	if out := f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C2"}); out.Session.SessionID == "" {
		t.Fatal("retry got no session")
	}
}

func TestNotificationsApplyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	f.clock.advance(time.Minute)
	sign := Notification{ID: "N1", EventType: EventContractSigned,
		Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, OpenID: "oU", OperateTime: t0.Add(time.Minute)}}

	var wg sync.WaitGroup
	outcomes := make([]Outcome, 10)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := f.svc.HandleNotification(ctx, sign)
			if err != nil {
				t.Error(err)
			}
			outcomes[i] = o
		}()
	}
	wg.Wait()
	applied := 0
	for _, o := range outcomes {
		switch o {
		case OutcomeApplied:
			applied++
		case OutcomeDuplicate:
		default:
			t.Fatalf("outcome %q", o)
		}
	}
	if applied != 1 || len(f.store.state.notifications) != 1 {
		t.Fatalf("applied %d times, %d records", applied, len(f.store.state.notifications))
	}
	a, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	if a.State != AgreementSigned || a.ContractID != "W1" || !a.SignedTime.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after PAPAY.SIGN: %+v", a)
	}

	// The merchant terminates; the later PAPAY.TERMINATE is a no-op.
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "closing"); err != nil {
		t.Fatal(err)
	}
	before, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	o, err := f.svc.HandleNotification(ctx, Notification{ID: "N2", EventType: EventContractTerminated,
		Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, TerminationMode: TerminatedByMerchant}})
	if err != nil || o != OutcomeNoop {
		t.Fatalf("terminate notification: %v %v", o, err)
	}
	after, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	if diff := cmp.Diff(before, after); diff != "" || after.TerminationMode != TerminatedByMerchant {
		t.Fatalf("no-op notification changed the agreement:\n%s", diff)
	}

	// A notification about an agreement papayd does not know is kept.
	o, err = f.svc.HandleNotification(ctx, Notification{ID: "N3", EventType: EventContractSigned, Resource: []byte(`{}`),
		Contract: &ContractEvent{OutContractCode: "ELSEWHERE", ContractID: "W9", PlanID: 7}})
	if err != nil || o != OutcomeUnmatched || f.store.state.notifications["//N3"].Outcome != OutcomeUnmatched {
		t.Fatalf("unknown agreement: %v %v", o, err)
	}
	// And so is an event type this version does not handle.
	o, err = f.svc.HandleNotification(ctx, Notification{ID: "N4", EventType: "TRANSACTION.SUCCESS", Resource: []byte(`{"out_trade_no":"x"}`)})
	if err != nil || o != OutcomeUnhandled || string(f.store.state.notifications["//N4"].Resource) != `{"out_trade_no":"x"}` {
		t.Fatalf("unhandled event: %v %v", o, err)
	}
}

func TestTerminateRules(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "x"); !errors.Is(err, ErrAgreementNotFound) {
		t.Fatalf("unknown contract: %v", err)
	}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", ""); KindOf(err) != KindInvalid {
		t.Fatalf("missing note: %v", err)
	}
	f.sign(t, "C1", "W1")
	f.wc.termErr = &RemoteError{HTTPStatus: 403, Code: "CONTRACT_NOT_EXIST", Message: "no such contract"}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "x"); !errors.Is(err, ErrContractNotExist) {
		t.Fatalf("CONTRACT_NOT_EXIST: %v", err)
	}
	f.wc.termErr = &RemoteError{HTTPStatus: 500, Code: "SYSTEM_ERROR"}
	if _, err := f.svc.TerminateAgreement(ctx, "W1", "x"); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("SYSTEM_ERROR: %v", err)
	}
	if a, _ := f.store.AgreementByOutContractCode(ctx, "C1"); a.State != AgreementSigned {
		t.Fatalf("failed terminate changed state to %s", a.State)
	}
	f.wc.termErr = nil
	a, err := f.svc.TerminateAgreement(ctx, "W1", "bye")
	if err != nil || a.State != AgreementTerminated || a.TerminationMode != TerminatedByMerchant || a.TerminationNote != "bye" || !a.TerminatedTime.Equal(t0) {
		t.Fatalf("terminate: %+v %v", a, err)
	}
	if got := f.wc.terminates[len(f.wc.terminates)-1]; got.SubMchID != "1900000109" || got.TerminationNote != "bye" {
		t.Fatalf("terminate request %+v", got)
	}
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	key := AgreementKey{OutContractCode: "C1", PlanID: 7}

	// Signed at WeChat, notification lost: refresh finds it.
	f.wc.contract = RemoteContract{ContractID: "W1", OutContractCode: "C1", PlanID: 7, OpenID: "oU", State: "SIGNED", SignedTime: t0.Add(time.Minute)}
	a, err := f.svc.GetAgreement(ctx, key, true)
	if err != nil || a.State != AgreementSigned || a.ContractID != "W1" {
		t.Fatalf("refresh signed: %+v %v", a, err)
	}
	// Terminated at WeChat.
	f.wc.contract.State, f.wc.contract.TerminationMode, f.wc.contract.TerminatedTime = "TERMINATED", TerminatedByPlatform, t0.Add(2*time.Minute)
	a, err = f.svc.GetAgreement(ctx, AgreementKey{ContractID: "W1"}, true)
	if err != nil || a.State != AgreementTerminated || a.TerminationMode != TerminatedByPlatform {
		t.Fatalf("refresh terminated: %+v %v", a, err)
	}

	// Never signed: EXPIRED once the session is over, not before.
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU2", OutContractCode: "C2"})
	f.wc.queryErr = &RemoteError{HTTPStatus: 404, Code: "NOT_FOUND"}
	k2 := AgreementKey{OutContractCode: "C2", PlanID: 7}
	if a, err := f.svc.GetAgreement(ctx, k2, true); err != nil || a.State != AgreementPending {
		t.Fatalf("live session: %+v %v", a, err)
	}
	f.clock.advance(2 * time.Hour)
	if a, err := f.svc.GetAgreement(ctx, k2, true); err != nil || a.State != AgreementExpired {
		t.Fatalf("expired session: %+v %v", a, err)
	}
	// WeChat unavailable: an error, nothing changed.
	f.wc.queryErr = &RemoteError{HTTPStatus: 503, Code: "SERVICE_UNAVAILABLE"}
	if _, err := f.svc.GetAgreement(ctx, k2, true); !errors.Is(err, ErrWeChatUnavailable) {
		t.Fatalf("unavailable: %v", err)
	}
	// Without refresh the local record answers; the plan must match.
	if _, err := f.svc.GetAgreement(ctx, AgreementKey{OutContractCode: "C2", PlanID: 8}, false); !errors.Is(err, ErrAgreementNotFound) {
		t.Fatalf("wrong plan: %v", err)
	}
	if _, err := f.svc.GetAgreement(ctx, AgreementKey{}, false); KindOf(err) != KindInvalid {
		t.Fatalf("empty key: %v", err)
	}
}

func TestListValidation(t *testing.T) {
	t.Parallel()
	f := newFixture()
	for _, tc := range []struct {
		f     AgreementFilter
		field string
	}{
		{AgreementFilter{PageSize: -1}, "page_size"},
		{AgreementFilter{PageSize: MaxPageSize + 1}, "page_size"},
		{AgreementFilter{State: "DONE"}, "state"},
		{AgreementFilter{PlanID: -1}, "plan_id"},
	} {
		_, _, err := f.svc.ListAgreements(context.Background(), tc.f)
		if e := AsError(err); e.Kind != KindInvalid || e.Violations[0].Field != tc.field {
			t.Errorf("%+v: %v", tc.f, err)
		}
	}
}

// TestTerminateRaceWithItsNotification: WeChat may deliver PAPAY.TERMINATE
// before TerminateAgreement records its answer. Either order ends in the
// same agreement, with the merchant's note.
func TestTerminateRaceWithItsNotification(t *testing.T) {
	t.Parallel()
	f := newFixture()
	ctx := context.Background()
	f.presign(t, PresignInput{PlanID: 7, OpenID: "oU", OutContractCode: "C1"})
	f.sign(t, "C1", "W1")
	f.wc.termHook = func() {
		o, err := f.svc.HandleNotification(ctx, Notification{ID: "T1", EventType: EventContractTerminated,
			Contract: &ContractEvent{OutContractCode: "C1", ContractID: "W1", PlanID: 7, TerminationMode: TerminatedByMerchant, OperateTime: t0}})
		if err != nil || o != OutcomeApplied {
			t.Errorf("notification first: %v %v", o, err)
		}
	}
	a, err := f.svc.TerminateAgreement(ctx, "W1", "merchant note")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != AgreementTerminated || a.TerminationMode != TerminatedByMerchant || a.TerminationNote != "merchant note" {
		t.Fatalf("after the race: %+v", a)
	}
	stored, _ := f.store.AgreementByOutContractCode(ctx, "C1")
	if diff := cmp.Diff(a, stored); diff != "" {
		t.Fatalf("answer differs from the record:\n%s", diff)
	}
}
