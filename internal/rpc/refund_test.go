package rpc

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
)

var refundBase = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

// fullRefund has every field the API shows set, each to a distinct value.
func fullRefund() service.Refund {
	return service.Refund{
		OutRefundNo: "R1", RefundID: "50000000382019052709732678859", OutTradeNo: "T1", TransactionID: "X1",
		Merchant: service.Merchant{SubMchID: "1900000109", SPAppID: "wx1234567890abcdef", SubAppID: "wxfedcba0987654321"},
		Reason:   "damaged", Amount: service.Money{Total: 1<<53 + 1, Currency: "HKD"}, ChargeTotal: 1<<60 + 7,
		NotifyURL:   "https://papayd.example/wechatpay/notify",
		PayerRefund: 1<<62 + 3, PayerCurrency: "CNY", ExchangeRate: service.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 91234567},
		Status: "PROCESSING", Channel: "ORIGINAL", RecvAccount: "招商银行信用卡0403", FundSource: "REFUND_SOURCE_UNSETTLED_FUNDS",
		State: service.RefundPending, FailureCode: "USER_ACCOUNT_ABNORMAL", FailureMessage: "closed account",
		LastError: "NOT_ENOUGH: retry later", SuccessTime: refundBase.Add(time.Hour), CreateTime: refundBase,
		UpdateTime: refundBase.Add(2 * time.Hour), Attempts: 3, LastSendTime: refundBase.Add(time.Minute),
		NextCheckTime: refundBase.Add(3 * time.Minute), Checks: 2,
	}
}

func TestRefundToProto(t *testing.T) {
	t.Parallel()
	r := fullRefund()
	want := &papayv1.Refund{
		RefundId: r.RefundID, OutRefundNo: "R1", OutTradeNo: "T1", TransactionId: "X1",
		SubMchid: "1900000109", SpAppid: "wx1234567890abcdef", SubAppid: "wxfedcba0987654321",
		Reason: "damaged", Amount: &papayv1.RefundAmount{Refund: 1<<53 + 1, Currency: "HKD"}, ChargeTotal: 1<<60 + 7,
		PayerRefund: 1<<62 + 3, PayerCurrency: "CNY", ExchangeRate: &papayv1.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: 91234567},
		Status: "PROCESSING", Channel: "ORIGINAL", RecvAccount: "招商银行信用卡0403", FundSource: "REFUND_SOURCE_UNSETTLED_FUNDS",
		State: papayv1.RefundState_REFUND_STATE_PENDING, FailureCode: "USER_ACCOUNT_ABNORMAL", FailureMessage: "closed account",
		LastError: "NOT_ENOUGH: retry later", Attempts: 3,
		LastSendTime: timestamppb.New(refundBase.Add(time.Minute)), NextCheckTime: timestamppb.New(refundBase.Add(3 * time.Minute)),
		SuccessTime: timestamppb.New(refundBase.Add(time.Hour)), CreateTime: timestamppb.New(refundBase),
		UpdateTime: timestamppb.New(refundBase.Add(2 * time.Hour)),
	}
	got := refundToProto(r)
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A field added to the message that the conversion does not fill
	// would go unnoticed by the comparison above (want would lack it too).
	fields := got.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); !got.ProtoReflect().Has(f) {
			t.Errorf("refundToProto leaves %s unset", f.Name())
		}
	}

	// The zero times and no exchange rate are unset, not the epoch or {}.
	r.SuccessTime, r.UpdateTime, r.LastSendTime, r.NextCheckTime, r.ExchangeRate = time.Time{}, time.Time{}, time.Time{}, time.Time{}, service.ExchangeRate{}
	got = refundToProto(r)
	for _, name := range []protoreflect.Name{"success_time", "update_time", "last_send_time", "next_check_time", "exchange_rate"} {
		if got.ProtoReflect().Has(fields.ByName(name)) {
			t.Errorf("%s is set for a zero value", name)
		}
	}
}

func TestRefundStates(t *testing.T) {
	t.Parallel()
	seen := map[papayv1.RefundState]service.RefundState{}
	for _, s := range service.RefundStates {
		p, ok := refundStateToProto[s]
		if !ok || p == papayv1.RefundState_REFUND_STATE_UNSPECIFIED {
			t.Errorf("state %s has no proto value", s)
			continue
		}
		if other, dup := seen[p]; dup {
			t.Errorf("states %s and %s both map to %s", s, other, p)
		}
		seen[p] = s
		back, err := refundStateFromProto(p)
		if err != nil || back != s {
			t.Errorf("refundStateFromProto(%s) = %q, %v; want %s", p, back, err, s)
		}
	}
	// Every proto value but UNSPECIFIED is a domain state.
	values := papayv1.RefundState(0).Descriptor().Values()
	for i := range values.Len() {
		p := papayv1.RefundState(values.Get(i).Number())
		if _, ok := seen[p]; !ok && p != papayv1.RefundState_REFUND_STATE_UNSPECIFIED {
			t.Errorf("proto state %s has no domain state", p)
		}
	}
	if s, err := refundStateFromProto(papayv1.RefundState_REFUND_STATE_UNSPECIFIED); s != "" || err != nil {
		t.Errorf("UNSPECIFIED: %q, %v; want no filter", s, err)
	}
	_, err := refundStateFromProto(papayv1.RefundState(99))
	var se *service.Error
	if !errors.As(err, &se) || se.Kind != service.KindInvalid || len(se.Violations) != 1 || se.Violations[0].Field != "state" {
		t.Errorf("unknown state: %v, want an invalid argument on state", err)
	}
}

// TestChargeToProtoMerchantAndRefunded: the charge shows its app ids and
// its refunded total.
func TestChargeToProtoMerchantAndRefunded(t *testing.T) {
	t.Parallel()
	c := service.Charge{OutTradeNo: "T1", Merchant: service.Merchant{SubMchID: "m1", SPAppID: "sp1", SubAppID: "sub1"},
		Amount: service.Money{Total: 500, Currency: "HKD"}, State: service.ChargeSucceeded, RefundedTotal: 120}
	got := chargeToProto(c)
	if got.GetSubMchid() != "m1" || got.GetSpAppid() != "sp1" || got.GetSubAppid() != "sub1" || got.GetRefundedTotal() != 120 {
		t.Errorf("charge %v: want sub_mchid m1, sp_appid sp1, sub_appid sub1, refunded_total 120", got)
	}
}

func TestEventToProtoRefund(t *testing.T) {
	t.Parallel()
	r := fullRefund()
	e := service.Event{ID: "evt_1", Sequence: 7, Type: service.EventRefundSucceeded, CreateTime: refundBase, SubMchID: r.SubMchID, Refund: &r}
	want := &papayv1.Event{Id: "evt_1", Sequence: 7, Type: "refund.succeeded", CreateTime: timestamppb.New(refundBase),
		SubMchid: r.SubMchID, Resource: &papayv1.Event_Refund{Refund: refundToProto(r)}}
	if diff := cmp.Diff(want, eventToProto(e), protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
