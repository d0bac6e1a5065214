package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// statusDetails returns the ErrorInfo reason and the BadRequest fields of err.
func statusDetails(err error) (codes.Code, string, []string) {
	st := status.Convert(err)
	var reason string
	var fields []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return st.Code(), reason, fields
}

func TestInvalidInputFieldByField(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	valid := func() *papayv1.CreatePresignSessionRequest {
		return &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oValid", UserDisplayName: "Lee"}
	}
	presignCases := []struct {
		name  string
		edit  func(*papayv1.CreatePresignSessionRequest)
		field string
	}{
		{"plan_id zero", func(r *papayv1.CreatePresignSessionRequest) { r.PlanId = 0 }, "plan_id"},
		{"plan_id negative", func(r *papayv1.CreatePresignSessionRequest) { r.PlanId = -1 }, "plan_id"},
		{"out_contract_code 33 chars", func(r *papayv1.CreatePresignSessionRequest) { r.OutContractCode = strings.Repeat("x", 33) }, "out_contract_code"},
		{"out_contract_code charset", func(r *papayv1.CreatePresignSessionRequest) { r.OutContractCode = "abc/def" }, "out_contract_code"},
		{"openid missing", func(r *papayv1.CreatePresignSessionRequest) { r.Openid = "" }, "openid"},
		{"openid 129 chars", func(r *papayv1.CreatePresignSessionRequest) { r.Openid = strings.Repeat("o", 129) }, "openid"},
		{"user_display_name 33 chars", func(r *papayv1.CreatePresignSessionRequest) { r.UserDisplayName = strings.Repeat("陳", 33) }, "user_display_name"},
		{"user_display_name emoji", func(r *papayv1.CreatePresignSessionRequest) { r.UserDisplayName = "Lee 🎉" }, "user_display_name"},
		{"sub_mchid 33 chars", func(r *papayv1.CreatePresignSessionRequest) { r.SubMchid = strings.Repeat("9", 33) }, "sub_mchid"},
		{"sp_appid with space", func(r *papayv1.CreatePresignSessionRequest) { r.SpAppid = "wx 1" }, "sp_appid"},
		{"sub_appid 33 chars", func(r *papayv1.CreatePresignSessionRequest) { r.SubAppid = strings.Repeat("w", 33) }, "sub_appid"},
		{"user_client_ip not an IP", func(r *papayv1.CreatePresignSessionRequest) { r.UserClientIp = "localhost" }, "user_client_ip"},
		{"H5 without user_client_ip", func(r *papayv1.CreatePresignSessionRequest) {
			r.Channel, r.Openid = papayv1.SigningChannel_SIGNING_CHANNEL_H5, ""
		}, "user_client_ip"},
		{"return_url not a URL", func(r *papayv1.CreatePresignSessionRequest) {
			r.Channel, r.ReturnUrl = papayv1.SigningChannel_SIGNING_CHANNEL_JSAPI, "not a url"
		}, "return_url"},
		{"return_url 257 chars", func(r *papayv1.CreatePresignSessionRequest) {
			r.Channel, r.ReturnUrl = papayv1.SigningChannel_SIGNING_CHANNEL_WEB, "https://m.example/"+strings.Repeat("p", 240)
		}, "return_url"},
		{"return_appid off H5", func(r *papayv1.CreatePresignSessionRequest) { r.ReturnAppid = "wxapp" }, "return_appid"},
		{"session_expire_time past", func(r *papayv1.CreatePresignSessionRequest) {
			r.SessionExpireTime = timestamppb.New(time.Now().Add(-time.Minute))
		}, "session_expire_time"},
		{"unknown channel", func(r *papayv1.CreatePresignSessionRequest) { r.Channel = 99 }, "channel"},
	}
	for _, tc := range presignCases {
		t.Run("presign/"+tc.name, func(t *testing.T) {
			req := valid()
			tc.edit(req)
			_, err := p.agreements.CreatePresignSession(ctx, req)
			code, reason, fields := statusDetails(err)
			if code != codes.InvalidArgument || reason != "INVALID_ARGUMENT" || len(fields) == 0 || fields[0] != tc.field {
				t.Fatalf("got %v %q %v, want INVALID_ARGUMENT naming %s (err %v)", code, reason, fields, tc.field, err)
			}
		})
	}
	// Nothing invalid was recorded.
	list, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{})
	if err != nil || len(list.GetAgreements()) != 0 {
		t.Fatalf("invalid requests left %d agreements (%v)", len(list.GetAgreements()), err)
	}

	otherCases := []struct {
		name  string
		call  func() error
		field string
	}{
		{"get without key", func() error { _, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{}); return err }, "contract_id"},
		{"get by code without plan", func() error {
			_, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: "C1"})
			return err
		}, "plan_id"},
		{"get with both keys", func() error {
			_, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: "W", OutContractCode: "C", PlanId: 1})
			return err
		}, "contract_id"},
		{"get contract_id 65 chars", func() error {
			_, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: strings.Repeat("1", 65)})
			return err
		}, "contract_id"},
		{"list page_size", func() error {
			_, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{PageSize: 501})
			return err
		}, "page_size"},
		{"list state", func() error {
			_, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{State: 42})
			return err
		}, "state"},
		{"list openid", func() error {
			_, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{Openid: strings.Repeat("o", 129)})
			return err
		}, "openid"},
		{"terminate without contract", func() error {
			_, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{TerminationNote: "x"})
			return err
		}, "contract_id"},
		{"terminate note 257 chars", func() error {
			_, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: "W", TerminationNote: strings.Repeat("n", 257)})
			return err
		}, "termination_note"},
	}
	for _, tc := range otherCases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, fields := statusDetails(tc.call())
			if code != codes.InvalidArgument || len(fields) == 0 || fields[0] != tc.field {
				t.Fatalf("got %v %v, want INVALID_ARGUMENT naming %s", code, fields, tc.field)
			}
		})
	}
}

func TestDomainErrorsCarryReasons(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	_, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: "NOPE"})
	if code, reason, _ := statusDetails(err); code != codes.NotFound || reason != "AGREEMENT_NOT_FOUND" {
		t.Fatalf("unknown agreement: %v %q", code, reason)
	}
	pending := presign(t, p, "oPending")
	_, err = p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{
		PlanId: planID, Openid: "oSomeoneElse", OutContractCode: pending.GetAgreement().GetOutContractCode()})
	if code, reason, _ := statusDetails(err); code != codes.AlreadyExists || reason != "OUT_CONTRACT_CODE_REUSED" {
		t.Fatalf("reused code: %v %q", code, reason)
	}
	// The same request again is a retry: the same session, no new one.
	again, err := p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{
		PlanId: planID, Openid: "oPending", UserDisplayName: "Chan Tai Man", OutContractCode: pending.GetAgreement().GetOutContractCode()})
	if err != nil || again.GetSessionId() != pending.GetSessionId() {
		t.Fatalf("retry: %v, session %q want %q", err, again.GetSessionId(), pending.GetSessionId())
	}
	_, err = p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "NOPE"})
	if code, reason, _ := statusDetails(err); code != codes.NotFound || reason != "CHARGE_NOT_FOUND" {
		t.Fatalf("unknown charge: %v %q", code, reason)
	}
}

func TestInvalidChargeInputFieldByField(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	a := signed(t, p, "oValidCharge")
	valid := func() *papayv1.CreateChargeRequest {
		return &papayv1.CreateChargeRequest{OutTradeNo: "V-1", ContractId: a.GetContractId(),
			Amount: &papayv1.Amount{Total: 100, Currency: "HKD"}, Description: "Club-Monthly"}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*papayv1.CreateChargeRequest)
		field string
	}{
		{"out_trade_no missing", func(r *papayv1.CreateChargeRequest) { r.OutTradeNo = "" }, "out_trade_no"},
		{"out_trade_no 33 chars", func(r *papayv1.CreateChargeRequest) { r.OutTradeNo = strings.Repeat("1", 33) }, "out_trade_no"},
		{"out_trade_no charset", func(r *papayv1.CreateChargeRequest) { r.OutTradeNo = "A B" }, "out_trade_no"},
		{"contract_id missing", func(r *papayv1.CreateChargeRequest) { r.ContractId = "" }, "contract_id"},
		{"amount missing", func(r *papayv1.CreateChargeRequest) { r.Amount = nil }, "amount.total"},
		{"amount zero", func(r *papayv1.CreateChargeRequest) { r.Amount.Total = 0 }, "amount.total"},
		{"amount negative", func(r *papayv1.CreateChargeRequest) { r.Amount.Total = -100 }, "amount.total"},
		{"currency missing", func(r *papayv1.CreateChargeRequest) { r.Amount.Currency = "" }, "amount.currency"},
		{"currency not Global", func(r *papayv1.CreateChargeRequest) { r.Amount.Currency = "BTC" }, "amount.currency"},
		{"description missing", func(r *papayv1.CreateChargeRequest) { r.Description = "" }, "description"},
		{"description 129 bytes", func(r *papayv1.CreateChargeRequest) { r.Description = strings.Repeat("d", 129) }, "description"},
		{"description emoji", func(r *papayv1.CreateChargeRequest) { r.Description = "Gym 💪" }, "description"},
		{"attach 128 bytes", func(r *papayv1.CreateChargeRequest) { r.Attach = strings.Repeat("a", 128) }, "attach"},
		{"goods_tag 33 chars", func(r *papayv1.CreateChargeRequest) { r.GoodsTag = strings.Repeat("g", 33) }, "goods_tag"},
		{"merchant_category_code 17 chars", func(r *papayv1.CreateChargeRequest) { r.MerchantCategoryCode = strings.Repeat("5", 17) }, "merchant_category_code"},
		{"device_ip", func(r *papayv1.CreateChargeRequest) { r.SceneInfo = &papayv1.SceneInfo{DeviceIp: "300.0.0.1"} }, "scene_info.device_ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := valid()
			tc.edit(req)
			_, err := p.charges.CreateCharge(ctx, req)
			code, reason, fields := statusDetails(err)
			if code != codes.InvalidArgument || reason != "INVALID_ARGUMENT" || len(fields) == 0 || fields[0] != tc.field {
				t.Fatalf("got %v %q %v, want INVALID_ARGUMENT naming %s", code, reason, fields, tc.field)
			}
		})
	}
	list, err := p.charges.ListCharges(ctx, &papayv1.ListChargesRequest{})
	if err != nil || len(list.GetCharges()) != 0 {
		t.Fatalf("invalid requests left %d charges (%v)", len(list.GetCharges()), err)
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"get without key", func() error { _, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{}); return err }, "out_trade_no"},
		{"get with both keys", func() error {
			_, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "A", TransactionId: "B"})
			return err
		}, "out_trade_no"},
		{"list state", func() error { _, err := p.charges.ListCharges(ctx, &papayv1.ListChargesRequest{State: 77}); return err }, "state"},
		{"list page_size", func() error {
			_, err := p.charges.ListCharges(ctx, &papayv1.ListChargesRequest{PageSize: 501})
			return err
		}, "page_size"},
		{"list time range", func() error {
			now := time.Now()
			_, err := p.charges.ListCharges(ctx, &papayv1.ListChargesRequest{CreateTimeStart: timestamppb.New(now), CreateTimeEnd: timestamppb.New(now.Add(-time.Hour))})
			return err
		}, "create_time_end"},
		{"close without number", func() error { _, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{}); return err }, "out_trade_no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, fields := statusDetails(tc.call())
			if code != codes.InvalidArgument || len(fields) == 0 || fields[0] != tc.field {
				t.Fatalf("got %v %v, want INVALID_ARGUMENT naming %s", code, fields, tc.field)
			}
		})
	}
}
