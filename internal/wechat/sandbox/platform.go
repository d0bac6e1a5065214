package sandbox

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AssociatedDataCertificate is the associated data of an encrypted platform certificate.
const AssociatedDataCertificate = "certificate"

// PlatformCertificate is a WeChat Pay platform certificate held by a Sandbox. Key is the
// private half the sandbox signs with; it is never served.
type PlatformCertificate struct {
	SerialNo      string            `json:"serial_no"`
	EffectiveTime time.Time         `json:"effective_time"`
	ExpireTime    time.Time         `json:"expire_time"`
	Certificate   *x509.Certificate `json:"-"`
	Key           *rsa.PrivateKey   `json:"-"`
}

func newPlatformCertificate(key *rsa.PrivateKey, cert *x509.Certificate) PlatformCertificate {
	return PlatformCertificate{SerialNo: certSerial(cert), EffectiveTime: cert.NotBefore,
		ExpireTime: cert.NotAfter, Certificate: cert, Key: key}
}

// platformSet is an immutable snapshot of the platform certificates: oldest first, the
// last one signs. Rotation replaces the whole snapshot (copy on write), so signing reads
// it without a lock.
type platformSet struct {
	certs []PlatformCertificate
}

func (p *platformSet) signing() PlatformCertificate { return p.certs[len(p.certs)-1] }

// platformCerts holds the current snapshot; rotateMu serialises its writers.
type platformCerts struct {
	current  atomic.Pointer[platformSet]
	rotateMu sync.Mutex
}

// SigningCertificate returns the platform certificate that signs responses and
// notifications now (in certificate mode): the newest one.
func (s *Sandbox) SigningCertificate() PlatformCertificate {
	return s.platform.current.Load().signing()
}

// PlatformCertificates returns the platform certificates GET /v3/global/certificates
// lists, newest (the signing one) first: every certificate neither retired nor expired
// under Options.Now; the signing certificate is always listed.
func (s *Sandbox) PlatformCertificates() []PlatformCertificate {
	set := s.platform.current.Load()
	now := s.now()
	out := make([]PlatformCertificate, 0, len(set.certs))
	for i, c := range slices.Backward(set.certs) {
		if i == len(set.certs)-1 || now.Before(c.ExpireTime) {
			out = append(out, c)
		}
	}
	return out
}

// RotatePlatformCertificate creates a new platform key and certificate (RSA-2048, valid
// five years from Options.Now) and returns its serial. From then on responses and
// notifications (retries of pending ones included) are signed with the new key, while
// GET /v3/global/certificates lists both the new and the old certificates until
// RetireOldCertificates. A client that only knows the old certificate fails to verify
// from the first response after the rotation; one that downloads the certificates again
// keeps working. Public-key mode is unaffected: the WeChat Pay public key
// (Credentials.PublicKeyID, Credentials.PlatformKey) does not rotate. Credentials are
// not modified.
func (s *Sandbox) RotatePlatformCertificate() (string, error) {
	kp, err := newKeyPair(s.now(), pkix.Name{
		CommonName:         "Tenpay.com sign",
		Organization:       []string{"Tenpay.com"},
		OrganizationalUnit: []string{"Tenpay.com CA Center"},
		Locality:           []string{"Shenzhen"},
		Country:            []string{"CN"},
	})
	if err != nil {
		return "", fmt.Errorf("sandbox: rotate platform certificate: %w", err)
	}
	fresh := newPlatformCertificate(kp.key, kp.cert)
	s.platform.rotateMu.Lock()
	defer s.platform.rotateMu.Unlock()
	old := s.platform.current.Load()
	s.platform.current.Store(&platformSet{certs: append(slices.Clip(old.certs), fresh)})
	s.log.Info("sandbox: platform certificate rotated", "serial_no", fresh.SerialNo)
	return fresh.SerialNo, nil
}

// RetireOldCertificates drops every platform certificate but the signing one from the
// certificate list (the end of a rotation's overlap) and returns the retired serials.
func (s *Sandbox) RetireOldCertificates() []string {
	s.platform.rotateMu.Lock()
	defer s.platform.rotateMu.Unlock()
	old := s.platform.current.Load()
	var retired []string
	for _, c := range old.certs[:len(old.certs)-1] {
		retired = append(retired, c.SerialNo)
	}
	s.platform.current.Store(&platformSet{certs: []PlatformCertificate{old.signing()}})
	if len(retired) > 0 {
		s.log.Info("sandbox: platform certificates retired", "serial_nos", retired)
	}
	return retired
}

// signer picks the key and key id a response or notification is signed with: the
// WeChat Pay public key in public-key mode, or when the request's own Wechatpay-Serial
// header names the public key id (migration); otherwise the signing platform certificate.
// r is nil for notifications.
func (s *Sandbox) signer(r *http.Request) (*rsa.PrivateKey, string) {
	if s.usePublicKey || (r != nil && strings.TrimSpace(r.Header.Get(HeaderSerial)) == s.creds.PublicKeyID) {
		return s.creds.PlatformKey, s.creds.PublicKeyID
	}
	c := s.SigningCertificate()
	return c.Key, c.SerialNo
}

// certificateItem is one entry of GET /v3/global/certificates.
type certificateItem struct {
	SerialNo           string             `json:"serial_no"`
	EffectiveTime      string             `json:"effective_time"`
	ExpireTime         string             `json:"expire_time"`
	EncryptCertificate encryptCertificate `json:"encrypt_certificate"`
}

type encryptCertificate struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
}

// handleCertificates serves GET /v3/global/certificates: every listed platform
// certificate, its PEM encrypted with AEAD_AES_256_GCM under the APIv3 key.
func (s *Sandbox) handleCertificates(w http.ResponseWriter, _ *http.Request) {
	certs := s.PlatformCertificates()
	data := make([]certificateItem, 0, len(certs))
	for _, c := range certs {
		enc, err := EncryptResource(s.creds.APIv3Key, pemBlock("CERTIFICATE", c.Certificate.Raw), AssociatedDataCertificate)
		if err != nil {
			writeAPIError(w, systemError("cannot encrypt the platform certificate"))
			return
		}
		data = append(data, certificateItem{
			SerialNo: c.SerialNo, EffectiveTime: wechatTime(c.EffectiveTime), ExpireTime: wechatTime(c.ExpireTime),
			EncryptCertificate: encryptCertificate{Algorithm: enc.Algorithm, Nonce: enc.Nonce,
				AssociatedData: enc.AssociatedData, Ciphertext: enc.Ciphertext},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// platformView is the control API's view of the platform certificates.
type platformView struct {
	SigningSerialNo string                `json:"signing_serial_no"`
	Certificates    []platformCertificate `json:"certificates"`
	Retired         []string              `json:"retired,omitempty"`
}

type platformCertificate struct {
	SerialNo      string `json:"serial_no"`
	EffectiveTime string `json:"effective_time"`
	ExpireTime    string `json:"expire_time"`
	Certificate   string `json:"certificate"` // PEM
}

func (s *Sandbox) platformView() platformView {
	v := platformView{SigningSerialNo: s.SigningCertificate().SerialNo}
	for _, c := range s.PlatformCertificates() {
		v.Certificates = append(v.Certificates, platformCertificate{SerialNo: c.SerialNo,
			EffectiveTime: wechatTime(c.EffectiveTime), ExpireTime: wechatTime(c.ExpireTime),
			Certificate: string(pemBlock("CERTIFICATE", c.Certificate.Raw))})
	}
	return v
}
