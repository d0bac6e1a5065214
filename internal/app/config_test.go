package app

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Mode: ModeSandbox, GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:8080", DataDir: "./papayd-data", LeaseTTL: 2 * time.Minute,
		LogLevel: "info", LogFormat: "text", ShutdownTimeout: 10 * time.Second, RecordCache: 16384,
		WeChatBaseURL: "https://apihk.mch.weixin.qq.com", WeChatTimeout: 10 * time.Second, SessionTTL: time.Hour,
		SandboxAddr: "127.0.0.1:0", SandboxTimeScale: 1,
		ReconcileInterval: time.Second, ReconcileFirstCheck: 5 * time.Second, EventRetention: 720 * time.Hour, ReconcileTimeScale: 1,
		ChargeUnpaidTimeout: 30 * time.Minute, AgreementRecheck: 24 * time.Hour,
		ChargeInFlight: 2 * time.Minute, FinalRechecks: []time.Duration{10 * time.Minute, 24 * time.Hour}, VerifyQPS: 10,
		WebhookRetrySchedule: service.DefaultWebhookRetrySchedule,
		WebhookInFlight:      8,
		RefundSpacing:        time.Minute,
		RefundAbnormalCheck:  time.Hour,
		WeChatQueryRate:      100, WeChatQueryBurst: 20,
		HTTPReadTimeout: 30 * time.Second, HTTPIdleTimeout: time.Minute, GRPCMaxConcurrentStreams: 256,
		Auth: AuthNone, KeyRate: 50,
		AdminAddr: "127.0.0.1:9091",
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
}

// TestParseConfigEmptyVariables: PAPAYD_ADMIN_ADDR set and empty turns
// the admin listener off, as documented; any other variable set and empty
// is as if unset (its default).
func TestParseConfigEmptyVariables(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, env(map[string]string{"PAPAYD_ADMIN_ADDR": "", "PAPAYD_MODE": "", "PAPAYD_GRPC_ADDR": ""}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminAddr != "" || c.Mode != ModeSandbox || c.GRPCAddr != "127.0.0.1:9090" {
		t.Fatalf("admin %q, mode %q, gRPC %q: want the admin listener off and the other defaults", c.AdminAddr, c.Mode, c.GRPCAddr)
	}
	if c, err := ParseConfig(nil, env(nil), io.Discard); err != nil || c.AdminAddr != "127.0.0.1:9091" {
		t.Fatalf("admin %q (%v) with PAPAYD_ADMIN_ADDR unset: want the default", c.AdminAddr, err)
	}
}

func TestParseConfigPrecedence(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]string{"-grpc-addr", "127.0.0.1:7000", "-wechatpay-timeout=3s"},
		env(map[string]string{"PAPAYD_GRPC_ADDR": "127.0.0.1:6000", "PAPAYD_HTTP_ADDR": "127.0.0.1:6001", "PAPAYD_WECHATPAY_TIMEOUT": "5s"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:7000" || c.HTTPAddr != "127.0.0.1:6001" || c.WeChatTimeout != 3*time.Second {
		t.Fatalf("flag should beat env, env beat default: %+v", c)
	}
}

func TestParseConfigErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	for setting, val := range map[string]string{
		"PAPAYD_MODE":                        "production",
		"PAPAYD_WECHATPAY_TIMEOUT":           "soon",
		"PAPAYD_SESSION_TTL":                 "-1h",
		"PAPAYD_SANDBOX_TIME_SCALE":          "0",
		"PAPAYD_RECORD_CACHE":                "-1",
		"PAPAYD_HTTP_READ_TIMEOUT":           "0s",
		"PAPAYD_GRPC_MAX_CONCURRENT_STREAMS": "0",
	} {
		_, err := ParseConfig(nil, env(map[string]string{setting: val}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), setting) {
			t.Errorf("%s=%s: error %v does not name the setting", setting, val, err)
		}
	}
	if _, err := ParseConfig([]string{"extra"}, env(nil), io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{{LogLevel: "loud", LogFormat: "text"}, {LogLevel: "info", LogFormat: "xml"}} {
		if _, err := NewLogger(c, io.Discard); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewLogger(Config{LogLevel: "debug", LogFormat: "json"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestMaxChargeAmountSetting(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PAPAYD_MAX_CHARGE_AMOUNT": "HKD=500000, USD=100000"}
	c, err := ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil || c.MaxChargeAmount["HKD"] != 500000 || c.MaxChargeAmount["USD"] != 100000 || len(c.MaxChargeAmount) != 2 {
		t.Fatalf("parsed %v, %v", c.MaxChargeAmount, err)
	}
	for _, bad := range []string{"HKD", "HKD=-1", "HKD=0", "hkd=5", "HKD=1e9", "HKDX=5"} {
		env["PAPAYD_MAX_CHARGE_AMOUNT"] = bad
		if _, err := ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard); err == nil || !strings.Contains(err.Error(), "PAPAYD_MAX_CHARGE_AMOUNT") {
			t.Errorf("%q: %v, want an error naming PAPAYD_MAX_CHARGE_AMOUNT", bad, err)
		}
	}
}

// TestSandboxRefusesLiveSettings: a live-only setting without PAPAYD_MODE=live
// stops papayd at start, naming the setting, instead of "charging" the
// simulator; the settings sandbox mode uses stay allowed.
func TestSandboxRefusesLiveSettings(t *testing.T) {
	t.Parallel()
	for _, setting := range []string{
		"PAPAYD_SP_MCHID", "PAPAYD_MCH_CERT_SERIAL", "PAPAYD_MCH_PRIVATE_KEY_FILE", "PAPAYD_APIV3_KEY_FILE",
		"PAPAYD_WECHATPAY_CERT_FILE", "PAPAYD_WECHATPAY_PUBLIC_KEY_FILE", "PAPAYD_WECHATPAY_PUBLIC_KEY_ID",
		"PAPAYD_WECHATPAY_BASE_URL", "PAPAYD_WECHATPAY_CA_FILE",
	} {
		for _, mode := range []string{"", ModeSandbox} {
			_, err := ParseConfig(nil, env(map[string]string{"PAPAYD_MODE": mode, setting: "https://x.example/1"}), io.Discard)
			if err == nil || !strings.Contains(err.Error(), setting) || !strings.Contains(err.Error(), "PAPAYD_MODE") {
				t.Errorf("PAPAYD_MODE=%q with %s: error %v does not refuse it by name", mode, setting, err)
			}
		}
		if _, err := ParseConfig(nil, env(map[string]string{"PAPAYD_MODE": ModeLive, setting: "x"}), io.Discard); err != nil {
			t.Errorf("live mode with %s: %v", setting, err)
		}
	}
	_, err := ParseConfig(nil, env(map[string]string{"PAPAYD_SP_MCHID": "1230000109", "PAPAYD_APIV3_KEY_FILE": "/k"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PAPAYD_SP_MCHID") || !strings.Contains(err.Error(), "PAPAYD_APIV3_KEY_FILE") {
		t.Errorf("two live settings: error %v does not name both", err)
	}
	allowed := map[string]string{
		"PAPAYD_SP_APPID": "wxsp", "PAPAYD_SUB_MCHID": "1900000109", "PAPAYD_SUB_APPID": "wxsub",
		"PAPAYD_NOTIFY_URL": "https://example.com/wechatpay/notify", "PAPAYD_MERCHANT_CATEGORY_CODE": "5411",
		"PAPAYD_WECHATPAY_BASE_URL": "https://apihk.mch.weixin.qq.com", "PAPAYD_WECHATPAY_TIMEOUT": "3s",
	}
	if _, err := ParseConfig(nil, env(allowed), io.Discard); err != nil {
		t.Errorf("sandbox mode with the settings it uses: %v", err)
	}
}

func TestLiveOnlyNamesSettings(t *testing.T) {
	t.Parallel()
	envs := map[string]bool{}
	for _, s := range new(Config).settings() {
		envs[s.env] = true
	}
	for e := range liveOnly {
		if !envs[e] {
			t.Errorf("liveOnly names %s, which is no setting", e)
		}
	}
}

// TestParseConfigAuthMTLS: PAPAYD_AUTH=mtls needs client certificates, and
// says so naming both settings.
func TestParseConfigAuthMTLS(t *testing.T) {
	t.Parallel()
	_, err := ParseConfig(nil, env(map[string]string{"PAPAYD_AUTH": "mtls"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PAPAYD_AUTH=mtls") || !strings.Contains(err.Error(), "PAPAYD_TLS_CLIENT_CA_FILE") {
		t.Fatalf("mtls without a client CA: %v, want a refusal naming PAPAYD_AUTH and PAPAYD_TLS_CLIENT_CA_FILE", err)
	}
	c, err := ParseConfig(nil, env(map[string]string{"PAPAYD_AUTH": "mtls", "PAPAYD_TLS_CLIENT_CA_FILE": "ca.pem",
		"PAPAYD_TLS_CERT_FILE": "cert.pem", "PAPAYD_TLS_KEY_FILE": "key.pem", "PAPAYD_NOTIFY_ADDR": "127.0.0.1:0"}), io.Discard)
	if err != nil || c.Auth != AuthMTLS {
		t.Fatalf("mtls with a client CA: %+v, %v", c.Auth, err)
	}
	if _, err := ParseConfig(nil, env(map[string]string{"PAPAYD_AUTH": "cert"}), io.Discard); err == nil || !strings.Contains(err.Error(), `"mtls"`) {
		t.Fatalf("unknown value: %v, want the values listed", err)
	}
}
