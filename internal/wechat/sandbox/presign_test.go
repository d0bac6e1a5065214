package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/wechatpay-apiv3/wechatpay-go/core"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestPresignChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	tests := []struct {
		channel string
		drop    []string // fields the channel does not take
		key     string
		shape   *regexp.Regexp
		want    sandbox.Channel
		openID  string
	}{
		{"miniprogram", nil, "session_id", regexp.MustCompile(`^\d{18}$`), sandbox.ChannelMiniProgram, "oMP"},
		{"app", nil, "session_id", regexp.MustCompile(`^\d{18}$`), sandbox.ChannelApp, "oAPP"},
		{"h5", []string{"openid"}, "sign_url",
			regexp.MustCompile(`^https://apihk\.mch\.weixin\.qq\.com/global/papay/contracts/login\?os_session_id=\d{18}#wechat_redirect$`),
			sandbox.ChannelH5, ""},
		{"jsapi", []string{"user_client_ip"}, "sign_url",
			regexp.MustCompile(`^https://apihk\.mch\.weixin\.qq\.com/global/papay/contracts/login\?os_session_id=\d{18}#wechat_redirect$`),
			sandbox.ChannelJSAPI, "oJSAPI"},
		{"web", []string{"openid", "user_client_ip"}, "show_code_url",
			regexp.MustCompile(`^https://osapp\.pay\.weixin\.qq\.com/global/papay/contracts/sessions/show_code\?os_session_id=\d{18}$`),
			sandbox.ChannelWeb, ""},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			t.Parallel()
			body := e.presignBody("C-"+tt.channel, tt.openID, "https://merchant.example/papay/sign")
			for _, k := range tt.drop {
				delete(body, k)
			}
			body["return_url"] = "https://merchant.example/back"
			if tt.channel == "miniprogram" {
				delete(body, "return_url")
			}
			res, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/"+tt.channel+"-pre-entrust-sign", body)
			if err != nil {
				t.Fatalf("pre-sign: %v", err) // includes the SDK's response signature check
			}
			var out map[string]string
			if err := core.UnMarshalResponse(res.Response, &out); err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || !tt.shape.MatchString(out[tt.key]) {
				t.Fatalf("response %v, want only %s matching %s", out, tt.key, tt.shape)
			}
			if got := res.Response.Header.Get("Wechatpay-Serial"); got != e.creds.PlatformSerial {
				t.Errorf("Wechatpay-Serial = %q, want the platform serial", got)
			}
			if res.Response.Header.Get("Request-ID") == "" {
				t.Error("no Request-ID")
			}
			id := out[tt.key]
			if tt.key != "session_id" {
				id, _ = sandbox.SessionIDFromURL(out[tt.key])
			}
			sess, ok := e.sb.Session(id)
			if !ok {
				t.Fatalf("session %s not stored", id)
			}
			want := sandbox.Session{
				ID: id, Channel: tt.want, State: sandbox.SessionPending, SubMchID: e.creds.SubMchID,
				SPAppID: e.creds.SPAppID, SubAppID: e.creds.SubAppID, PlanID: planID,
				OutContractCode: "C-" + tt.channel, UserDisplayName: "Zhang San",
				SuccessNotifyURL: "https://merchant.example/papay/sign", OpenID: tt.openID,
			}
			switch tt.want {
			case sandbox.ChannelMiniProgram, sandbox.ChannelApp, sandbox.ChannelH5:
				want.UserClientIP = "119.145.83.6"
			}
			if tt.channel != "miniprogram" {
				want.ReturnURL = "https://merchant.example/back"
			}
			if d := sess.ExpiresAt.Sub(sess.CreatedAt); d != 2*time.Hour {
				t.Errorf("session lifetime %v, want the 2h default", d)
			}
			if diff := cmp.Diff(want, sess, cmpopts.IgnoreFields(sandbox.Session{}, "CreatedAt", "ExpiresAt")); diff != "" {
				t.Errorf("session (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPresignOutContractCodeReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	first := e.presign(t, "miniprogram", e.presignBody("C100", "oUser1", e.sinkURL))
	second := e.presign(t, "miniprogram", e.presignBody("C100", "oUser1", e.sinkURL))
	if first == second {
		t.Fatal("re-pre-signing a pending out_contract_code must open a new session")
	}
	if _, err := e.sb.SignSession(second, sandbox.User{}); err != nil {
		t.Fatalf("SignSession: %v", err)
	}
	if _, err := e.sb.SignSession(first, sandbox.User{}); !errors.Is(err, sandbox.ErrContractExists) {
		t.Fatalf("signing the older session: %v, want ErrContractExists", err)
	}
	_, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/app-pre-entrust-sign",
		e.presignBody("C100", "oUser2", e.sinkURL))
	apiError(t, err, http.StatusBadRequest, sandbox.CodeInvalidRequest)
}

func TestPresignUserWithSignedContract(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	e.signedContract(t, "C200", "oSameUser", e.sinkURL)
	_, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/jsapi-pre-entrust-sign",
		e.presignBody("C201", "oSameUser", e.sinkURL))
	apiError(t, err, http.StatusBadRequest, sandbox.CodeInvalidRequest)

	// An H5 session has no openid: the rule applies when the user signs.
	h5 := e.presign(t, "h5", e.presignBody("C202", "", e.sinkURL))
	if _, err := e.sb.SignSession(h5, sandbox.User{OpenID: "oSameUser"}); !errors.Is(err, sandbox.ErrContractExists) {
		t.Fatalf("SignSession: %v, want ErrContractExists", err)
	}
}

func TestPresignSessionExpiry(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	e := newEnv(t, sandbox.Options{Now: clk.Now})
	defaulted := e.presign(t, "miniprogram", e.presignBody("C300", "oA", e.sinkURL))
	body := e.presignBody("C301", "oB", e.sinkURL)
	body["expired_time"] = clk.Now().Add(10 * time.Minute).Format(time.RFC3339)
	short := e.presign(t, "miniprogram", body)

	clk.Advance(11 * time.Minute)
	if _, err := e.sb.SignSession(short, sandbox.User{}); !errors.Is(err, sandbox.ErrSessionExpired) {
		t.Fatalf("SignSession after expired_time: %v, want ErrSessionExpired", err)
	}
	if sess, _ := e.sb.Session(short); sess.State != sandbox.SessionExpired {
		t.Errorf("state %s, want EXPIRED", sess.State)
	}
	clk.Advance(2 * time.Hour)
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/sessions/"+defaulted+":sign", nil)
	if status != http.StatusGone || out["code"] != "SESSION_EXPIRED" {
		t.Fatalf("control sign after 2h: %d %v, want 410 SESSION_EXPIRED", status, out)
	}
}
