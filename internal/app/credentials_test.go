package app

import (
	"strings"
	"testing"
)

// liveConfig is a live configuration complete but for its key files, which
// do not exist.
func liveConfig() Config {
	return Config{
		Mode: ModeLive, WeChatBaseURL: "https://apihk.mch.weixin.qq.com", SPMchID: "1230000109", SPAppID: "wxsp",
		SubMchID: "1900000109", MchCertSerial: "SERIAL", MchPrivateKeyFile: "/nonexistent/key.pem",
		APIv3KeyFile: "/nonexistent/apiv3", WeChatPayCertFile: "/nonexistent/cert.pem",
		NotifyURL: "https://papayd.example/wechatpay/notify",
	}
}

// TestLiveNotifyURLMustBeHTTPS: WeChat Pay notifies HTTPS URLs only, so
// live mode refuses any other PAPAYD_NOTIFY_URL; an http:// URL of this
// machine (a local stand-in for WeChat) stays allowed.
func TestLiveNotifyURLMustBeHTTPS(t *testing.T) {
	t.Parallel()
	for url, refused := range map[string]bool{
		"http://papayd.example/wechatpay/notify":  true,
		"http://10.0.0.5:8080/wechatpay/notify":   true,
		"ftp://papayd.example/wechatpay/notify":   true,
		"papayd.example/wechatpay/notify":         true,
		"https:///wechatpay/notify":               true,
		"https://papayd.example/wechatpay/notify": false,
		"http://127.0.0.1:8080/wechatpay/notify":  false,
		"http://localhost:8080/wechatpay/notify":  false,
		"http://[::1]:8080/wechatpay/notify":      false,
	} {
		c := liveConfig()
		c.NotifyURL = url
		_, err := loadLive(c)
		if got := err != nil && strings.Contains(err.Error(), "PAPAYD_NOTIFY_URL"); got != refused {
			t.Errorf("PAPAYD_NOTIFY_URL=%s: refused %v, want %v (%v)", url, got, refused, err)
		}
	}
}

// TestLiveReportsEverySettingAtOnce: one start names every missing or
// invalid setting, not the first one only.
func TestLiveReportsEverySettingAtOnce(t *testing.T) {
	t.Parallel()
	c := liveConfig()
	c.SPMchID, c.APIv3KeyFile, c.NotifyURL = "", "", "http://papayd.example/wechatpay/notify"
	_, err := loadLive(c)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, setting := range []string{"PAPAYD_SP_MCHID", "PAPAYD_APIV3_KEY_FILE", "PAPAYD_NOTIFY_URL",
		"PAPAYD_MCH_PRIVATE_KEY_FILE", "PAPAYD_WECHATPAY_CERT_FILE"} {
		if !strings.Contains(err.Error(), setting) {
			t.Errorf("error does not name %s:\n%v", setting, err)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(line, "PAPAYD_") {
			t.Errorf("line %q names no setting", line)
		}
	}
}
