package sandbox_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

const certificatesV3 = "/v3/global/certificates"

// certificateList is GET /v3/global/certificates as the SDK's downloader reads it.
type certificateList struct {
	Data []struct {
		SerialNo           string    `json:"serial_no"`
		EffectiveTime      time.Time `json:"effective_time"`
		ExpireTime         time.Time `json:"expire_time"`
		EncryptCertificate struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"encrypt_certificate"`
	} `json:"data"`
}

// downloadCertificates is a merchant refreshing its platform certificates: it fetches
// the list without verifying (bootstrap), decrypts every certificate with the SDK's
// utils.DecryptAES256GCM, and then verifies the response with what it decrypted.
// It returns the certificates in list order.
func (e *env) downloadCertificates(t *testing.T) []*x509.Certificate {
	t.Helper()
	bootstrap := sdkClient(t, e.creds, e.httpClient, option.WithoutValidator())
	res, err := bootstrap.Get(context.Background(), e.apiURL+certificatesV3)
	if err != nil {
		t.Fatalf("GET %s: %v", certificatesV3, err)
	}
	raw, err := io.ReadAll(res.Response.Body)
	if err != nil {
		t.Fatal(err)
	}
	res.Response.Body = io.NopCloser(bytes.NewReader(raw))
	var list certificateList
	if err := core.UnMarshalResponse(&http.Response{Body: io.NopCloser(bytes.NewReader(raw))}, &list); err != nil {
		t.Fatalf("certificate list: %v", err)
	}
	var certs []*x509.Certificate
	for _, item := range list.Data {
		enc := item.EncryptCertificate
		if enc.Algorithm != "AEAD_AES_256_GCM" || enc.AssociatedData != "certificate" || len(enc.Nonce) != 12 {
			t.Errorf("encrypt_certificate %+v", enc)
		}
		plain, err := utils.DecryptAES256GCM(string(e.creds.APIv3Key), enc.AssociatedData, enc.Nonce, enc.Ciphertext)
		if err != nil {
			t.Fatalf("decrypt certificate %s: %v", item.SerialNo, err)
		}
		if block, _ := pem.Decode([]byte(plain)); block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("plaintext of %s is not a PEM certificate: %q", item.SerialNo, plain)
		}
		cert, err := utils.LoadCertificate(plain)
		if err != nil {
			t.Fatalf("load certificate %s: %v", item.SerialNo, err)
		}
		if got := utils.GetCertificateSerialNumber(*cert); got != item.SerialNo {
			t.Errorf("serial_no %s, certificate serial %s", item.SerialNo, got)
		}
		if !item.EffectiveTime.Equal(cert.NotBefore.Truncate(time.Second)) || !item.ExpireTime.Equal(cert.NotAfter.Truncate(time.Second)) {
			t.Errorf("%s: effective %v expire %v, certificate %v..%v", item.SerialNo,
				item.EffectiveTime, item.ExpireTime, cert.NotBefore, cert.NotAfter)
		}
		certs = append(certs, cert)
	}
	// Verify the download with the certificates it carried.
	v := validators.NewWechatPayResponseValidator(verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList(certs)))
	if err := v.Validate(context.Background(), res.Response); err != nil {
		t.Fatalf("the certificate list does not verify with its own certificates: %v", err)
	}
	return certs
}

func serials(certs []*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		out = append(out, utils.GetCertificateSerialNumber(*c))
	}
	return out
}

func TestCertificatesEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})

	// Through the SDK client that trusts the platform certificate: signed and verified.
	res, err := e.client.Get(context.Background(), e.apiURL+certificatesV3)
	if err != nil {
		t.Fatalf("GET %s: %v", certificatesV3, err)
	}
	if got := res.Response.Header.Get("Wechatpay-Serial"); got != e.creds.PlatformSerial {
		t.Errorf("signed under %q, want %q", got, e.creds.PlatformSerial)
	}

	certs := e.downloadCertificates(t)
	if len(certs) != 1 || !certs[0].Equal(e.creds.PlatformCert) {
		t.Fatalf("certificates %v, want the platform certificate %s", serials(certs), e.creds.PlatformSerial)
	}

	// Like every API call it needs the merchant's signature.
	resp, err := e.httpClient.Get(e.apiURL + certificatesV3)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned GET: %d, want 401", resp.StatusCode)
	}
}

func TestPlatformCertificateRotation(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	e := newEnv(t, sandbox.Options{})
	oldSerial := creds.PlatformSerial
	oldClient := e.client // trusts the original certificate only, never refreshes
	c := e.signedContract(t, "CR00", "oRotate", e.sinkURL)
	query := e.apiURL + contractsV3 + "/" + c.ContractID + e.queryParams()
	if _, err := oldClient.Get(context.Background(), query); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	newSerial, err := e.sb.RotatePlatformCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if newSerial == oldSerial || len(newSerial) != 40 || e.sb.SigningCertificate().SerialNo != newSerial {
		t.Fatalf("new serial %q (old %q), signing %q", newSerial, oldSerial, e.sb.SigningCertificate().SerialNo)
	}
	if e.sb.Credentials().PlatformSerial != oldSerial {
		t.Error("rotation modified the credentials")
	}

	// Responses switch to the new key at once: the client that never refreshes fails.
	if _, err := oldClient.Get(context.Background(), query); err == nil {
		t.Fatal("a client knowing only the old certificate verified a response after the rotation")
	}

	// During the overlap both certificates are listed, newest first.
	certs := e.downloadCertificates(t)
	if got := serials(certs); !slices.Equal(got, []string{newSerial, oldSerial}) {
		t.Fatalf("listed %v, want [new old]", got)
	}
	refreshed := sdkClient(t, creds, e.httpClient, option.WithWechatPayCertificate(certs))
	res, err := refreshed.Get(context.Background(), query)
	if err != nil {
		t.Fatalf("refreshed client: %v", err)
	}
	if got := res.Response.Header.Get("Wechatpay-Serial"); got != newSerial {
		t.Errorf("response signed under %q, want %q", got, newSerial)
	}

	// Notifications are signed with the new key too.
	e.client = refreshed
	oldRecv := newReceiver(t, creds, certVerifier(creds))
	newRecv := newReceiver(t, creds, verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList(certs)))
	e.signedContract(t, "CR01", "oRotate1", oldRecv.URL)
	select {
	case n := <-oldRecv.got:
		if n.err == nil || n.header.Get("Wechatpay-Serial") != newSerial {
			t.Errorf("old-certificate receiver: err %v, serial %q", n.err, n.header.Get("Wechatpay-Serial"))
		}
	case <-time.After(waitTimeout):
		t.Fatal("no notification")
	}
	e.signedContract(t, "CR02", "oRotate2", newRecv.URL)
	if n := newRecv.next(t); n.header.Get("Wechatpay-Serial") != newSerial {
		t.Errorf("notification serial %q", n.header.Get("Wechatpay-Serial"))
	}

	// Retiring the old certificate (control API) leaves the new one only.
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/platform:retire", nil)
	if status != http.StatusOK || out["signing_serial_no"] != newSerial {
		t.Fatalf("retire: %d %v", status, out)
	}
	if retired, _ := out["retired"].([]any); len(retired) != 1 || retired[0] != oldSerial {
		t.Errorf("retired %v", out["retired"])
	}
	if got := serials(e.downloadCertificates(t)); !slices.Equal(got, []string{newSerial}) {
		t.Fatalf("after retire listed %v", got)
	}
	if _, err := oldClient.Get(context.Background(), query); err == nil {
		t.Error("old-certificate client verified a response after the retirement")
	}
	newOnly := sdkClient(t, creds, e.httpClient, option.WithWechatPayCertificate(certs[:1]))
	if _, err := newOnly.Get(context.Background(), query); err != nil {
		t.Errorf("new-certificate client after retirement: %v", err)
	}

	// Public-key mode does not rotate.
	res, err = e.pubKeyClient(t).Get(context.Background(), query)
	if err != nil || res.Response.Header.Get("Wechatpay-Serial") != creds.PublicKeyID {
		t.Errorf("public-key client after rotation: %v", err)
	}
}

func TestPlatformControlAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	status, out := e.control(t, http.MethodGet, "/sandbox/v1/platform", nil)
	certs, _ := out["certificates"].([]any)
	if status != http.StatusOK || out["signing_serial_no"] != e.creds.PlatformSerial || len(certs) != 1 {
		t.Fatalf("GET platform: %d %v", status, out)
	}
	if pemText, _ := certs[0].(map[string]any)["certificate"].(string); pemText != string(pem.EncodeToMemory(
		&pem.Block{Type: "CERTIFICATE", Bytes: e.creds.PlatformCert.Raw})) {
		t.Errorf("certificate PEM %q", pemText)
	}
	status, out = e.control(t, http.MethodPost, "/sandbox/v1/platform:rotate", nil)
	certs, _ = out["certificates"].([]any)
	if status != http.StatusOK || out["signing_serial_no"] == e.creds.PlatformSerial || len(certs) != 2 {
		t.Fatalf("rotate: %d %v", status, out)
	}
	if first, _ := certs[0].(map[string]any); first["serial_no"] != out["signing_serial_no"] {
		t.Errorf("the signing certificate is not listed first: %v", certs)
	}
}

// liveVerifier trusts the platform certificates the sandbox lists at the moment: a
// merchant that refreshes instantly.
type liveVerifier struct{ sb *sandbox.Sandbox }

func (v *liveVerifier) Verify(ctx context.Context, serial, message, signature string) error {
	for _, c := range v.sb.PlatformCertificates() {
		if c.SerialNo == serial {
			return verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509.Certificate{c.Certificate})).
				Verify(ctx, serial, message, signature)
		}
	}
	return fmt.Errorf("unknown platform serial %s", serial)
}

func (v *liveVerifier) GetSerial(context.Context) (string, error) {
	return v.sb.SigningCertificate().SerialNo, nil
}

// TestRotationWhileInFlight rotates while API requests and notifications are being
// signed (run with -race); every response and notification verifies with the listed
// certificates.
func TestRotationWhileInFlight(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	live := &liveVerifier{}
	recv := newReceiver(t, creds, live)
	e := newEnv(t, sandbox.Options{TerminationNotifyURL: recv.URL})
	live.sb = e.sb
	c := e.signedContract(t, "CR10", "oInflight", recv.URL)
	recv.next(t)
	query := e.apiURL + contractsV3 + "/" + c.ContractID + e.queryParams()
	client := sdkClient(t, creds, e.httpClient, option.WithVerifier(live))
	var sessions []string
	for i := range 4 {
		sessions = append(sessions, e.presign(t, "miniprogram", e.presignBody(fmt.Sprint("CR2", i), fmt.Sprint("oInflight", i), recv.URL)))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := client.Get(context.Background(), query); err != nil {
					t.Errorf("query during rotation: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for _, id := range sessions {
			if _, err := e.sb.SignSession(id, sandbox.User{}); err != nil {
				t.Errorf("SignSession: %v", err)
			}
		}
	})
	newSerial, err := e.sb.RotatePlatformCertificate()
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Get(context.Background(), query)
	if err != nil || res.Response.Header.Get("Wechatpay-Serial") != newSerial {
		t.Errorf("after rotation: %v", err)
	}
	close(stop)
	wg.Wait()
	if _, err := e.sb.WaitDelivered(ctx(t), 1+len(sessions)); err != nil {
		t.Fatal(err)
	}
	for range sessions {
		recv.next(t) // every notification parsed and verified
	}
	for _, d := range e.sb.Deliveries() {
		if !d.Delivered || d.Attempt != 1 {
			t.Errorf("delivery %+v", d)
		}
	}
}
