package hostile

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// liveSettings is a complete live-mode configuration (keys written to
// files), towards an address where nothing listens, without PAPAYD_MODE.
func liveSettings(t *testing.T) map[string]string {
	t.Helper()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	if err := creds.WriteFiles(keys); err != nil {
		t.Fatal(err)
	}
	f := sandbox.FilesIn(keys)
	return map[string]string{
		"PAPAYD_GRPC_ADDR":            freePort(t),
		"PAPAYD_HTTP_ADDR":            freePort(t),
		"PAPAYD_ADMIN_ADDR":           freePort(t),
		"PAPAYD_DATA_DIR":             filepath.Join(t.TempDir(), "data"),
		"PAPAYD_WECHATPAY_BASE_URL":   "https://127.0.0.1:1",
		"PAPAYD_SP_MCHID":             creds.MchID,
		"PAPAYD_SP_APPID":             creds.SPAppID,
		"PAPAYD_SUB_MCHID":            creds.SubMchID,
		"PAPAYD_MCH_CERT_SERIAL":      creds.MerchantSerial,
		"PAPAYD_MCH_PRIVATE_KEY_FILE": f.MerchantKey,
		"PAPAYD_APIV3_KEY_FILE":       f.APIv3Key,
		"PAPAYD_WECHATPAY_CERT_FILE":  f.PlatformCert,
		"PAPAYD_NOTIFY_URL":           "https://papayd.example/wechatpay/notify",
	}
}

var processProbes = []probe{
	{"live settings without PAPAYD_MODE", func(t *testing.T, _ *papayd) (bool, string) {
		out, served := exitsWith(t, liveSettings(t))
		return served || !strings.Contains(out, "PAPAYD_"), fmt.Sprintf("served %v: %s", served, firstLine(out))
	}},
	{"live mode on a sandbox database", func(t *testing.T, _ *papayd) (bool, string) {
		env := liveSettings(t)
		sb := start(t, map[string]string{"PAPAYD_DATA_DIR": env["PAPAYD_DATA_DIR"]})
		sb.stop()
		env["PAPAYD_MODE"] = "live"
		out, served := exitsWith(t, env)
		return served || !strings.Contains(out, "sandbox"), fmt.Sprintf("served %v: %s", served, firstLine(out))
	}},
	{"live mode towards plain http", func(t *testing.T, _ *papayd) (bool, string) {
		env := liveSettings(t)
		env["PAPAYD_MODE"], env["PAPAYD_WECHATPAY_BASE_URL"] = "live", "http://127.0.0.1:1"
		out, served := exitsWith(t, env)
		return served || !strings.Contains(out, "PAPAYD_WECHATPAY_BASE_URL"), fmt.Sprintf("served %v: %s", served, firstLine(out))
	}},
	{"full disk: ready fails, live stays", func(t *testing.T, _ *papayd) (bool, string) {
		return fullDisk(t)
	}},
	{"10,000 random API keys over REST and gRPC", func(t *testing.T, _ *papayd) (bool, string) {
		return guessKeys(t)
	}},
}

// fullDisk runs papayd with a 2 MiB file size limit (a full disk, as
// SQLite sees it), writes until a write fails, and checks that /readyz
// then fails while /healthz still answers.
func fullDisk(t *testing.T) (bool, string) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("prlimit (util-linux) is needed for the full-disk probe")
	}
	p := start(t, map[string]string{"PAPAYD_RECORD_CACHE": "0", "PAPAYD_LOG_LEVEL": "warn", fileSizeLimit: "2097152"})
	// Until writes fail for good: the first failures may be of the WAL
	// alone, which a checkpoint frees again while the database file can
	// still grow.
	failed, inARow := 0, 0
	for i := range 20000 {
		st := p.call("POST", "/v1/agreements:presign", map[string]any{"plan_id": 4001, "openid": fmt.Sprintf("oFull%d", i)}, nil)
		if st < 500 {
			inARow = 0
			continue
		}
		if inARow++; inARow == 1 && failed == 0 {
			failed = i
		}
		if inARow == 20 {
			break
		}
	}
	if inARow < 20 {
		return true, fmt.Sprintf("writes did not fail for good under a 2 MiB file size limit (first failure after %d presigns)", failed)
	}
	time.Sleep(1500 * time.Millisecond) // past the readiness cache
	ready := p.call("GET", "/readyz", nil, nil)
	live := p.call("GET", "/healthz", nil, nil)
	return ready == http.StatusOK || live != http.StatusOK, fmt.Sprintf("writes failed from presign %d on; /readyz %d, /healthz %d", failed, ready, live)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
