package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// Default ids of freshly created credentials. They are fixed so that documentation and
// local configuration can name them; the keys are always fresh.
const (
	defaultMchID    = "1900000001"
	defaultSubMchID = "1900000109"
	defaultSPAppID  = "wxd930ea5d5a258f4f"
	defaultSubAppID = "wx2421b1c4370ec43b"
)

// Credentials are both sides of the trust between a service provider and WeChat Pay:
// the merchant API key pair (used by papayd to sign requests, checked by the sandbox),
// the WeChat Pay platform key pair (used by the sandbox to sign responses and
// notifications, checked by papayd), the APIv3 key that encrypts notification resources,
// and the ids of the merchant, its sub-merchant and their apps.
type Credentials struct {
	// MchID is the service provider's merchant id (sp_mchid), e.g. "1900000001".
	MchID string

	// MerchantKey, MerchantCert and MerchantSerial are the merchant's API certificate.
	MerchantKey    *rsa.PrivateKey
	MerchantCert   *x509.Certificate
	MerchantSerial string

	// PlatformKey, PlatformCert and PlatformSerial are the WeChat Pay platform certificate
	// a Sandbox starts with; Sandbox.RotatePlatformCertificate adds newer ones without
	// changing these fields (see Sandbox.SigningCertificate).
	PlatformKey    *rsa.PrivateKey
	PlatformCert   *x509.Certificate
	PlatformSerial string

	// PublicKeyID names the platform key in WeChat Pay public-key mode
	// ("PUB_KEY_ID_..."); the key itself is PlatformKey's public half.
	PublicKeyID string

	// APIv3Key is the 32-byte AES-256-GCM key (ASCII letters and digits).
	APIv3Key []byte

	// SubMchID, SPAppID and SubAppID are the default sub-merchant and apps.
	SubMchID string
	SPAppID  string
	SubAppID string

	// Dir is the directory the credentials were loaded from or written to ("" if in memory).
	Dir string
}

// NewCredentials makes fresh in-memory credentials: two RSA-2048 key pairs with
// self-signed certificates, a random APIv3 key and public key id, and the default ids.
func NewCredentials() (*Credentials, error) {
	now := time.Now()
	var (
		wg                   sync.WaitGroup
		merchant, platform   keyPair
		merchantErr, platErr error
	)
	wg.Go(func() {
		merchant, merchantErr = newKeyPair(now, pkix.Name{
			CommonName:         defaultMchID,
			Organization:       []string{"papayd sandbox merchant"},
			OrganizationalUnit: []string{"papayd sandbox"},
			Country:            []string{"CN"},
		})
	})
	wg.Go(func() {
		platform, platErr = newKeyPair(now, pkix.Name{
			CommonName:         "Tenpay.com sign",
			Organization:       []string{"Tenpay.com"},
			OrganizationalUnit: []string{"Tenpay.com CA Center"},
			Locality:           []string{"Shenzhen"},
			Country:            []string{"CN"},
		})
	})
	wg.Wait()
	if err := errors.Join(merchantErr, platErr); err != nil {
		return nil, fmt.Errorf("new sandbox credentials: %w", err)
	}
	return &Credentials{
		MchID:          defaultMchID,
		MerchantKey:    merchant.key,
		MerchantCert:   merchant.cert,
		MerchantSerial: certSerial(merchant.cert),
		PlatformKey:    platform.key,
		PlatformCert:   platform.cert,
		PlatformSerial: certSerial(platform.cert),
		PublicKeyID:    "PUB_KEY_ID_01" + randomString(20, decimal),
		APIv3Key:       []byte(randomString(32, alphanumeric)),
		SubMchID:       defaultSubMchID,
		SPAppID:        defaultSPAppID,
		SubAppID:       defaultSubAppID,
	}, nil
}

// PlatformPublicKey is the WeChat Pay public key (public-key mode) and the key of the
// platform certificate.
func (c *Credentials) PlatformPublicKey() *rsa.PublicKey { return &c.PlatformKey.PublicKey }

// validate reports the first inconsistency that would make the sandbox misbehave.
func (c *Credentials) validate() error {
	switch {
	case c == nil:
		return errors.New("credentials are missing")
	case c.MchID == "" || c.SubMchID == "" || c.SPAppID == "":
		return errors.New("credentials need MchID, SubMchID and SPAppID")
	case c.MerchantKey == nil || c.MerchantCert == nil || c.PlatformKey == nil || c.PlatformCert == nil:
		return errors.New("credentials need merchant and platform keys and certificates")
	case !c.MerchantKey.PublicKey.Equal(c.MerchantCert.PublicKey):
		return errors.New("merchant key does not match the merchant certificate")
	case !c.PlatformKey.PublicKey.Equal(c.PlatformCert.PublicKey):
		return errors.New("platform key does not match the platform certificate")
	case c.MerchantSerial != certSerial(c.MerchantCert):
		return errors.New("merchant serial does not match the merchant certificate")
	case c.PlatformSerial != certSerial(c.PlatformCert):
		return errors.New("platform serial does not match the platform certificate")
	case !strings.HasPrefix(c.PublicKeyID, "PUB_KEY_ID_"):
		return fmt.Errorf("public key id %q does not start with PUB_KEY_ID_", c.PublicKeyID)
	}
	return checkAPIv3Key(c.APIv3Key)
}

// checkAPIv3Key requires 32 ASCII letters or digits, as the merchant platform does.
func checkAPIv3Key(key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("APIv3 key is %d bytes, want 32", len(key))
	}
	for _, b := range key {
		if !strings.ContainsRune(alphanumeric, rune(b)) {
			return errors.New("APIv3 key must be ASCII letters and digits")
		}
	}
	return nil
}

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// newKeyPair generates an RSA-2048 key and a self-signed certificate valid for five
// years, with a 20-byte serial whose first byte is non-zero (40 hex digits, as WeChat's).
func newKeyPair(now time.Time, subject pkix.Name) (keyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return keyPair{}, fmt.Errorf("generate key for %s: %w", subject.CommonName, err)
	}
	serial := make([]byte, 20)
	rand.Read(serial)
	serial[0] = serial[0]%0x7f + 1
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		Subject:               subject,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return keyPair{}, fmt.Errorf("certificate for %s: %w", subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("certificate for %s: %w", subject.CommonName, err)
	}
	return keyPair{key: key, cert: cert}, nil
}

// certSerial is the serial as WeChat Pay and wechatpay-go spell it: upper-case hex of the
// serial's bytes (utils.GetCertificateSerialNumber).
func certSerial(cert *x509.Certificate) string {
	return fmt.Sprintf("%X", cert.SerialNumber.Bytes())
}
