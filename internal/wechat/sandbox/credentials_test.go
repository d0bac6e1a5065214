package sandbox_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestLoadOrCreateCredentials(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "wechat-sandbox")
	created, err := sandbox.LoadOrCreateCredentials(dir)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	loaded, err := sandbox.LoadOrCreateCredentials(dir)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ids := func(c *sandbox.Credentials) []string {
		return []string{c.MchID, c.MerchantSerial, c.PlatformSerial, c.PublicKeyID, string(c.APIv3Key),
			c.SubMchID, c.SPAppID, c.SubAppID, c.Dir}
	}
	if diff := cmp.Diff(ids(created), ids(loaded)); diff != "" {
		t.Errorf("reloaded ids (-created +loaded):\n%s", diff)
	}
	if !created.MerchantKey.Equal(loaded.MerchantKey) || !created.PlatformKey.Equal(loaded.PlatformKey) ||
		!created.MerchantCert.Equal(loaded.MerchantCert) || !created.PlatformCert.Equal(loaded.PlatformCert) {
		t.Error("reloaded keys or certificates differ")
	}

	// The files are what wechatpay-go loads in live mode.
	f := sandbox.FilesIn(dir)
	if key, err := utils.LoadPrivateKeyWithPath(f.MerchantKey); err != nil || !key.Equal(created.MerchantKey) {
		t.Errorf("utils.LoadPrivateKeyWithPath: %v", err)
	}
	for path, serial := range map[string]string{f.MerchantCert: created.MerchantSerial, f.PlatformCert: created.PlatformSerial} {
		cert, err := utils.LoadCertificateWithPath(path)
		if err != nil || utils.GetCertificateSerialNumber(*cert) != serial {
			t.Errorf("%s: %v, serial mismatch", path, err)
		}
	}
	if pub, err := utils.LoadPublicKeyWithPath(f.PlatformPublicKey); err != nil || !pub.Equal(created.PlatformPublicKey()) {
		t.Errorf("utils.LoadPublicKeyWithPath: %v", err)
	}
	raw, err := os.ReadFile(f.APIv3Key)
	if err != nil || len(raw) != 32 || !bytes.Equal(raw, created.APIv3Key) {
		t.Errorf("apiv3_key = %q, %v", raw, err)
	}
	for _, p := range []string{f.MerchantKey, f.PlatformKey, f.APIv3Key} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", p, st.Mode().Perm(), err)
		}
	}

	// The loaded credentials drive a sandbox end to end.
	e := newEnv(t, sandbox.Options{Credentials: loaded})
	e.signedContract(t, "CB00", "oFiles", e.sinkURL)
}

func TestLoadOrCreateCredentialsRefusesPartialDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := *testCredentials(t) // WriteFiles sets Dir: not on the shared credentials
	if err := c.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sandbox.FilesIn(dir).PlatformKey); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.LoadOrCreateCredentials(dir); err == nil {
		t.Fatal("a directory missing platform_key.pem was accepted")
	}
	if _, err := os.Stat(sandbox.FilesIn(dir).PlatformKey); !os.IsNotExist(err) {
		t.Error("the missing key was recreated")
	}
}

func TestLoadCredentialsRejectsMismatchedKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := *testCredentials(t) // WriteFiles sets Dir: not on the shared credentials
	if err := c.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	f := sandbox.FilesIn(dir)
	mk, _ := os.ReadFile(f.MerchantKey)
	if err := os.WriteFile(f.PlatformKey, mk, 0o600); err != nil { // platform key swapped for the merchant's
		t.Fatal(err)
	}
	if _, err := sandbox.LoadCredentials(dir); err == nil {
		t.Fatal("mismatched platform key accepted")
	}
}

func TestNewCredentials(t *testing.T) {
	t.Parallel()
	c := testCredentials(t)
	if got := utils.GetCertificateSerialNumber(*c.MerchantCert); got != c.MerchantSerial || len(got) != 40 {
		t.Errorf("merchant serial %q, SDK says %q", c.MerchantSerial, got)
	}
	if got := utils.GetCertificateSerialNumber(*c.PlatformCert); got != c.PlatformSerial || len(got) != 40 {
		t.Errorf("platform serial %q, SDK says %q", c.PlatformSerial, got)
	}
	if len(c.APIv3Key) != 32 || len(c.PublicKeyID) != len("PUB_KEY_ID_0112345678901234567890") || c.MerchantSerial == c.PlatformSerial {
		t.Errorf("credentials %q %q", c.APIv3Key, c.PublicKeyID)
	}
	if _, err := sandbox.New(sandbox.Options{}); err == nil {
		t.Error("New without credentials succeeded")
	}
}
