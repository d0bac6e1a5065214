package tests

import (
	"context"
	"net/url"
	"strings"
	"testing"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// TestEveryChannel presigns on each Global signing channel, checks the kind
// of answer WeChat gives for it, and signs each to the end.
func TestEveryChannel(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		channel papayv1.SigningChannel
		req     *papayv1.CreatePresignSessionRequest
		answer  func(*papayv1.CreatePresignSessionResponse) string
	}{
		{papayv1.SigningChannel_SIGNING_CHANNEL_MINI_PROGRAM,
			&papayv1.CreatePresignSessionRequest{Openid: "oMini", UserDisplayName: "Mini", UserClientIp: "203.0.113.7"},
			(*papayv1.CreatePresignSessionResponse).GetSessionId},
		{papayv1.SigningChannel_SIGNING_CHANNEL_APP,
			&papayv1.CreatePresignSessionRequest{Openid: "oApp", UserDisplayName: "App"},
			(*papayv1.CreatePresignSessionResponse).GetSessionId},
		{papayv1.SigningChannel_SIGNING_CHANNEL_H5,
			&papayv1.CreatePresignSessionRequest{UserClientIp: "198.51.100.4", ReturnUrl: "https://shop.example/back", ReturnAppid: "wxreturn"},
			(*papayv1.CreatePresignSessionResponse).GetSignUrl},
		{papayv1.SigningChannel_SIGNING_CHANNEL_JSAPI,
			&papayv1.CreatePresignSessionRequest{Openid: "oJs", ReturnUrl: "https://shop.example/js"},
			(*papayv1.CreatePresignSessionResponse).GetSignUrl},
		{papayv1.SigningChannel_SIGNING_CHANNEL_WEB,
			&papayv1.CreatePresignSessionRequest{ReturnUrl: "https://shop.example/web"},
			(*papayv1.CreatePresignSessionResponse).GetShowCodeUrl},
	} {
		t.Run(tc.channel.String(), func(t *testing.T) {
			req := tc.req
			req.Channel, req.PlanId = tc.channel, planID
			resp, err := p.agreements.CreatePresignSession(ctx, req)
			if err != nil {
				t.Fatalf("presign: %v", err)
			}
			answer := tc.answer(resp)
			others := resp.GetSessionId() + resp.GetSignUrl() + resp.GetShowCodeUrl()
			if answer == "" || answer != others {
				t.Fatalf("answer %q (session_id %q sign_url %q show_code_url %q)", answer, resp.GetSessionId(), resp.GetSignUrl(), resp.GetShowCodeUrl())
			}
			if resp.GetAgreement().GetChannel() != tc.channel {
				t.Fatalf("recorded channel %v", resp.GetAgreement().GetChannel())
			}
			session := answer
			if strings.Contains(answer, "://") {
				u, err := url.Parse(answer)
				if err != nil {
					t.Fatal(err)
				}
				session = u.Query().Get("os_session_id")
			}
			var body any
			if req.Openid == "" {
				body = map[string]string{"openid": "oSigned" + tc.channel.String()}
			}
			p.userSigns(session, body)
			a := waitState(t, p, resp.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
			if a.GetOpenid() == "" || a.GetContractId() == "" {
				t.Fatalf("signed agreement lacks openid or contract id: %v", a)
			}
		})
	}
}
