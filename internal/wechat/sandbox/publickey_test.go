package sandbox_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// pubKeyClient is a wechatpay-go client in public-key mode: it verifies only signatures
// under the public key id and announces that id in its Wechatpay-Serial request header.
func (e *env) pubKeyClient(t *testing.T) *core.Client {
	return sdkClient(t, e.creds, e.httpClient, option.WithWechatPayPublicKeyAuthCipher(
		e.creds.MchID, e.creds.MerchantSerial, e.creds.MerchantKey, e.creds.PublicKeyID, e.creds.PlatformPublicKey()))
}

func TestPublicKeyMode(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, verifiers.NewSHA256WithRSAPubkeyVerifier(creds.PublicKeyID, *creds.PlatformPublicKey()))
	termRecv := newReceiver(t, creds, verifiers.NewSHA256WithRSAPubkeyVerifier(creds.PublicKeyID, *creds.PlatformPublicKey()))
	e := newEnv(t, sandbox.Options{UsePublicKey: true, TerminationNotifyURL: termRecv.URL})
	e.client = e.pubKeyClient(t)

	id := e.presign(t, "app", e.presignBody("CA00", "oPub", recv.URL))
	c, err := e.sb.SignSession(id, sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	if n := recv.next(t); n.header.Get("Wechatpay-Serial") != creds.PublicKeyID || n.content["contract_id"] != c.ContractID {
		t.Errorf("PAPAY.SIGN serial %q content %v", n.header.Get("Wechatpay-Serial"), n.content)
	}
	res, err := e.client.Post(context.Background(), e.apiURL+contractsV3+"/"+c.ContractID+"/terminate", map[string]any{
		"sp_appid": creds.SPAppID, "sub_mchid": creds.SubMchID, "termination_note": "bye",
	})
	if err != nil {
		t.Fatalf("terminate in public-key mode: %v", err)
	}
	if res.Response.StatusCode != http.StatusNoContent || res.Response.Header.Get("Wechatpay-Serial") != creds.PublicKeyID {
		t.Errorf("terminate: %d serial %q", res.Response.StatusCode, res.Response.Header.Get("Wechatpay-Serial"))
	}
	if n := termRecv.next(t); n.content["contract_termination_mode"] != "MERCHANT" {
		t.Errorf("PAPAY.TERMINATE %v", n.content)
	}

	// A certificate-mode client cannot verify public-key signatures.
	certClient := sdkClient(t, creds, e.httpClient, option.WithWechatPayCertificate([]*x509.Certificate{creds.PlatformCert}))
	if _, err := certClient.Get(context.Background(), e.apiURL+contractsV3+"/"+c.ContractID+e.queryParams()); err == nil {
		t.Error("certificate-mode client accepted a public-key response")
	}
}

func TestPublicKeyChosenByRequestSerial(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{}) // certificate mode
	c := e.signedContract(t, "CA10", "oMigrate", e.sinkURL)
	path := e.apiURL + contractsV3 + "/" + c.ContractID + e.queryParams()
	for name, tt := range map[string]struct {
		client *core.Client
		serial string
	}{
		"certificate client": {e.client, e.creds.PlatformSerial},
		"public-key client":  {e.pubKeyClient(t), e.creds.PublicKeyID},
	} {
		res, err := tt.client.Get(context.Background(), path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := res.Response.Header.Get("Wechatpay-Serial"); got != tt.serial {
			t.Errorf("%s: Wechatpay-Serial %q, want %q", name, got, tt.serial)
		}
	}
}
