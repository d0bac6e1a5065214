package app

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Mode: ModeSandbox, GRPCAddr: "127.0.0.1:9090", HTTPAddr: "127.0.0.1:8080", DataDir: "./papayd-data",
		LogLevel: "info", LogFormat: "text", ShutdownTimeout: 10 * time.Second, RecordCache: 16384,
		WeChatBaseURL: "https://apihk.mch.weixin.qq.com", WeChatTimeout: 10 * time.Second, SessionTTL: time.Hour,
		SandboxAddr: "127.0.0.1:0", SandboxTimeScale: 1,
		ReconcileInterval: time.Second, ReconcileFirstCheck: 5 * time.Second, ReconcileTimeScale: 1,
		ChargeUnpaidTimeout: 30 * time.Minute, AgreementRecheck: 24 * time.Hour,
		ChargeInFlight: 2 * time.Minute, FinalRechecks: []time.Duration{10 * time.Minute, 24 * time.Hour}, VerifyQPS: 10,
		HTTPReadTimeout: 30 * time.Second, HTTPIdleTimeout: time.Minute, GRPCMaxConcurrentStreams: 256,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
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
	c, err := ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.MaxChargeAmount["HKD"] != 500000 || c.MaxChargeAmount["USD"] != 100000 || len(c.MaxChargeAmount) != 2 {
		t.Fatalf("parsed %v, %v", c.MaxChargeAmount, err)
	}
	for _, bad := range []string{"HKD", "HKD=-1", "HKD=0", "hkd=5", "HKD=1e9", "HKDX=5"} {
		env["PAPAYD_MAX_CHARGE_AMOUNT"] = bad
		if _, err := ParseConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "PAPAYD_MAX_CHARGE_AMOUNT") {
			t.Errorf("%q: %v, want an error naming PAPAYD_MAX_CHARGE_AMOUNT", bad, err)
		}
	}
}
