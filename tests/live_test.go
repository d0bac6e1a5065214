package tests

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/app"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// serveWeChat serves h over HTTPS, as WeChat Pay is served, under a
// certificate papayd does not trust by itself, and returns its base URL and
// a PEM file of that certificate to trust (PAPAYD_WECHATPAY_CA_FILE).
func serveWeChat(t *testing.T, h http.Handler) (baseURL, caFile string) {
	t.Helper()
	wx := httptest.NewTLSServer(h)
	t.Cleanup(wx.Close)
	caFile = filepath.Join(t.TempDir(), "wechatpay-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: wx.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	return wx.URL, caFile
}

// liveEnv is a complete live-mode configuration whose keys are files
// written from creds, pointing at baseURL, trusting the CA certificates of
// caFile (none when empty) besides the system's.
func liveEnv(t *testing.T, creds *sandbox.Credentials, baseURL, caFile string) map[string]string {
	t.Helper()
	keys := t.TempDir()
	if err := creds.WriteFiles(keys); err != nil {
		t.Fatal(err)
	}
	f := sandbox.FilesIn(keys)
	env := map[string]string{
		"PAPAYD_MODE":                 "live",
		"PAPAYD_GRPC_ADDR":            "127.0.0.1:0",
		"PAPAYD_HTTP_ADDR":            "127.0.0.1:0",
		"PAPAYD_ADMIN_ADDR":           "127.0.0.1:0",
		"PAPAYD_DATA_DIR":             t.TempDir(),
		"PAPAYD_WECHATPAY_BASE_URL":   baseURL,
		"PAPAYD_SP_MCHID":             creds.MchID,
		"PAPAYD_SP_APPID":             creds.SPAppID,
		"PAPAYD_SUB_MCHID":            creds.SubMchID,
		"PAPAYD_SUB_APPID":            creds.SubAppID,
		"PAPAYD_MCH_CERT_SERIAL":      creds.MerchantSerial,
		"PAPAYD_MCH_PRIVATE_KEY_FILE": f.MerchantKey,
		"PAPAYD_APIV3_KEY_FILE":       f.APIv3Key,
		"PAPAYD_WECHATPAY_CERT_FILE":  f.PlatformCert,
		// Unreachable on purpose: these tests find signatures by refresh.
		"PAPAYD_NOTIFY_URL": "http://127.0.0.1:1/wechatpay/notify",
		// Callers without keys: allowed in live mode on loopback only.
		"PAPAYD_AUTH": "none",
	}
	if caFile != "" {
		env["PAPAYD_WECHATPAY_CA_FILE"] = caFile
	}
	return env
}

// liveSimulator starts a simulator outside papayd, so that it outlives
// papayd's restarts, and returns it with a complete live-mode configuration
// towards it whose HTTP address (and so notify URL) is fixed across
// restarts. timeout is papayd's WeChat deadline.
func liveSimulator(t *testing.T, timeout string) (*sandbox.Sandbox, map[string]string) {
	t.Helper()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := freePort(t)
	sb, err := sandbox.New(sandbox.Options{Credentials: creds, TimeScale: 0.0001, TerminationNotifyURL: "http://" + httpAddr + "/wechatpay/notify"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	base, ca := serveWeChat(t, sb.APIHandler())
	env := liveEnv(t, creds, base, ca)
	env["PAPAYD_HTTP_ADDR"], env["PAPAYD_NOTIFY_URL"] = httpAddr, "http://"+httpAddr+"/wechatpay/notify"
	env["PAPAYD_WECHATPAY_TIMEOUT"] = timeout
	return sb, env
}

func newLive(t *testing.T, env map[string]string) (*app.App, error) {
	t.Helper()
	cfg, err := app.ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	if err != nil {
		return nil, err
	}
	return app.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
}

// TestLiveModeFromFiles runs papayd in live mode against the simulator as a
// stand-in for apihk, configured only through files, in platform-certificate
// mode, public-key mode, and both at once (a migration). The user signs but
// the notification is lost; refresh finds the signature; terminate works.
func TestLiveModeFromFiles(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"certificate", "public-key", "both"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			creds, err := sandbox.NewCredentials()
			if err != nil {
				t.Fatal(err)
			}
			sb, err := sandbox.New(sandbox.Options{Credentials: creds, TimeScale: 0.0001, UsePublicKey: mode == "public-key"})
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Close()
			base, ca := serveWeChat(t, sb.APIHandler())
			env := liveEnv(t, creds, base, ca)
			if mode != "certificate" {
				dir := filepath.Dir(env["PAPAYD_MCH_PRIVATE_KEY_FILE"])
				env["PAPAYD_WECHATPAY_PUBLIC_KEY_FILE"] = sandbox.FilesIn(dir).PlatformPublicKey
				env["PAPAYD_WECHATPAY_PUBLIC_KEY_ID"] = creds.PublicKeyID
			}
			if mode == "public-key" {
				delete(env, "PAPAYD_WECHATPAY_CERT_FILE")
			}
			a, err := newLive(t, env)
			if err != nil {
				t.Fatalf("live papayd: %v", err)
			}
			if a.Sandbox() != nil {
				t.Fatal("live mode started the simulator")
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			agreements := papayv1.NewAgreementServiceClient(conn)

			pre, err := agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oLive", UserDisplayName: "Live"})
			if err != nil {
				t.Fatalf("presign: %v", err)
			}
			c, err := sb.SignSession(pre.GetSessionId(), sandbox.User{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: pre.GetAgreement().GetOutContractCode(), PlanId: planID, Refresh: true})
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if got.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_SIGNED || got.GetAgreement().GetContractId() != c.ContractID {
				t.Fatalf("refreshed agreement %v, want SIGNED %s", got.GetAgreement(), c.ContractID)
			}
			term, err := agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: c.ContractID, TerminationNote: "live test"})
			if err != nil || term.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED {
				t.Fatalf("terminate: %v %v", term, err)
			}
			if sc, _ := sb.Contract(c.ContractID); sc.State != "TERMINATED" {
				t.Fatalf("WeChat side: %+v", sc)
			}
		})
	}
}

// TestLiveModeRefusesIncompleteConfig: each missing or broken setting stops
// papayd at start, naming the setting.
func TestLiveModeRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	base := liveEnv(t, creds, "https://127.0.0.1:1", "")
	short := filepath.Join(t.TempDir(), "short_key")
	if err := os.WriteFile(short, []byte(strings.Repeat("k", 31)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(map[string]string){
		"PAPAYD_SP_MCHID":             func(e map[string]string) { delete(e, "PAPAYD_SP_MCHID") },
		"PAPAYD_SP_APPID":             func(e map[string]string) { delete(e, "PAPAYD_SP_APPID") },
		"PAPAYD_SUB_MCHID":            func(e map[string]string) { delete(e, "PAPAYD_SUB_MCHID") },
		"PAPAYD_MCH_CERT_SERIAL":      func(e map[string]string) { delete(e, "PAPAYD_MCH_CERT_SERIAL") },
		"PAPAYD_MCH_PRIVATE_KEY_FILE": func(e map[string]string) { e["PAPAYD_MCH_PRIVATE_KEY_FILE"] = notPEM },
		"PAPAYD_APIV3_KEY_FILE":       func(e map[string]string) { e["PAPAYD_APIV3_KEY_FILE"] = short },
		"PAPAYD_NOTIFY_URL":           func(e map[string]string) { delete(e, "PAPAYD_NOTIFY_URL") },
		"PAPAYD_WECHATPAY_CERT_FILE":  func(e map[string]string) { delete(e, "PAPAYD_WECHATPAY_CERT_FILE") },
		"PAPAYD_WECHATPAY_BASE_URL":   func(e map[string]string) { e["PAPAYD_WECHATPAY_BASE_URL"] = "http://127.0.0.1:1" },
		"PAPAYD_WECHATPAY_CA_FILE":    func(e map[string]string) { e["PAPAYD_WECHATPAY_CA_FILE"] = notPEM },
		"PAPAYD_WECHATPAY_PUBLIC_KEY_ID": func(e map[string]string) {
			e["PAPAYD_WECHATPAY_PUBLIC_KEY_FILE"] = e["PAPAYD_WECHATPAY_CERT_FILE"]
		},
	}
	for setting, edit := range cases {
		t.Run(setting, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			edit(env)
			a, err := newLive(t, env)
			if err == nil {
				t.Fatalf("papayd started without a valid %s (%v)", setting, a.GRPCAddr())
			}
			if !strings.Contains(err.Error(), setting) {
				t.Fatalf("error %q does not name %s", err, setting)
			}
		})
	}
}

// TestDataDirBelongsToOneMode: a data directory first used in sandbox mode
// is refused to live mode (and the other way round), and to another
// sp_mchid, naming both sides; the same mode and merchant open it again.
func TestDataDirBelongsToOneMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sandboxEnv := map[string]string{"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0", "PAPAYD_ADMIN_ADDR": "127.0.0.1:0", "PAPAYD_DATA_DIR": dir}
	openClose := func(env map[string]string) error {
		a, err := newLive(t, env)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return a.Run(ctx)
	}
	if err := openClose(sandboxEnv); err != nil {
		t.Fatalf("sandbox papayd: %v", err)
	}
	creds, err := sandbox.LoadCredentials(filepath.Join(dir, "sandbox"))
	if err != nil {
		t.Fatal(err)
	}
	live := liveEnv(t, creds, "https://127.0.0.1:1", "")
	live["PAPAYD_DATA_DIR"] = dir
	err = openClose(live)
	if err == nil {
		t.Fatal("live papayd opened the sandbox's data directory")
	}
	for _, s := range []string{"sandbox mode (sp_mchid " + creds.MchID + ")", "live mode, sp_mchid " + creds.MchID} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	// papayd verify would ask WeChat Pay about the sandbox's records.
	liveCfg, err := app.ParseConfig(nil, func(k string) (string, bool) { v, ok := live[k]; return v, ok }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Verify(context.Background(), liveCfg, 10, io.Discard, slog.New(slog.DiscardHandler)); !errors.Is(err, db.ErrOtherIdentity) {
		t.Errorf("live verify of the sandbox's data directory: %v, want db.ErrOtherIdentity", err)
	}
	if err := openClose(sandboxEnv); err != nil {
		t.Fatalf("sandbox papayd again: %v", err)
	}

	// A live directory: another merchant, or sandbox mode, is refused.
	liveDir := t.TempDir()
	live["PAPAYD_DATA_DIR"], sandboxEnv["PAPAYD_DATA_DIR"] = liveDir, liveDir
	if err := openClose(live); err != nil {
		t.Fatalf("live papayd: %v", err)
	}
	other := maps.Clone(live)
	other["PAPAYD_SP_MCHID"] = "1230000109"
	if err := openClose(other); err == nil || !strings.Contains(err.Error(), "sp_mchid 1230000109") {
		t.Errorf("another sp_mchid: %v", err)
	}
	if err := openClose(sandboxEnv); err == nil || !strings.Contains(err.Error(), "belongs to live mode") {
		t.Errorf("sandbox papayd on a live directory: %v", err)
	}
}
