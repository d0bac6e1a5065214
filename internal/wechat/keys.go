package wechat

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Keys verifies WeChat Pay signatures with the key that the
// Wechatpay-Serial header names: a platform certificate (by its serial, in
// upper-case hex) or the WeChat Pay public key (by its id, "PUB_KEY_ID_...").
// With both configured (a migration), either verifies.
//
// The certificates can be replaced at runtime with SetCertificates; readers
// see either the old or the new set, never a mix. Keys is safe for
// concurrent use. It implements the SDK's auth.Verifier, so the Client's
// answer validation and the NotificationParser use the same keys.
//
// The Keys of a Client whose certificates are downloaded
// (Config.DownloadCertificates) may start empty: it then verifies nothing,
// and announces no serial, until a CertRefresher publishes a set.
type Keys struct {
	publicKeyID string
	publicKey   *rsa.PublicKey
	snap        atomic.Pointer[keySnapshot]
}

// keySnapshot is one immutable generation of the key set.
type keySnapshot struct {
	bySerial map[string]*rsa.PublicKey
	// accept is the serial the client announces in Wechatpay-Serial: the
	// public key id if there is one, else the newest certificate.
	accept string
}

var _ auth.Verifier = (*Keys)(nil)

// Verification failures. They name no key material.
var (
	errUnknownSerial = errors.New("no WeChat Pay key has this serial")
	errBadSignature  = errors.New("signature does not verify")
)

// NewKeys builds a key set from platform certificates and/or a WeChat Pay
// public key with its id. At least one key is required; publicKeyID and
// publicKey go together.
func NewKeys(certs []*x509.Certificate, publicKeyID string, publicKey *rsa.PublicKey) (*Keys, error) {
	return newKeys(certs, publicKeyID, publicKey, false)
}

// newKeys is NewKeys; with allowEmpty, no key at all is accepted (the
// certificates are to be downloaded).
func newKeys(certs []*x509.Certificate, publicKeyID string, publicKey *rsa.PublicKey, allowEmpty bool) (*Keys, error) {
	if (publicKeyID == "") != (publicKey == nil) {
		return nil, errors.New("wechat keys: a WeChat Pay public key needs its id, and an id needs its key")
	}
	k := &Keys{publicKeyID: publicKeyID, publicKey: publicKey}
	if allowEmpty && len(certs) == 0 && publicKey == nil {
		k.snap.Store(&keySnapshot{bySerial: map[string]*rsa.PublicKey{}})
		return k, nil
	}
	if err := k.SetCertificates(certs); err != nil {
		return nil, err
	}
	return k, nil
}

// SetCertificates replaces the platform certificates (the public key, if
// any, stays). Every certificate must carry an RSA key. On error the
// current set is kept.
func (k *Keys) SetCertificates(certs []*x509.Certificate) error {
	s := &keySnapshot{bySerial: make(map[string]*rsa.PublicKey, len(certs)+1)}
	var newest *x509.Certificate
	for i, c := range certs {
		if c == nil {
			return fmt.Errorf("wechat keys: certificate %d is nil", i)
		}
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("wechat keys: certificate %d has no RSA public key", i)
		}
		serial := utils.GetCertificateSerialNumber(*c)
		if serial == k.publicKeyID {
			return fmt.Errorf("wechat keys: certificate serial %s equals the public key id", serial)
		}
		s.bySerial[serial] = pub
		if newest == nil || c.NotBefore.After(newest.NotBefore) {
			newest, s.accept = c, serial
		}
	}
	if k.publicKey != nil {
		s.bySerial[k.publicKeyID] = k.publicKey
		s.accept = k.publicKeyID
	}
	if len(s.bySerial) == 0 {
		return errors.New("wechat keys: no platform certificate and no public key")
	}
	k.snap.Store(s)
	return nil
}

// Verify checks a base64 RSA-PKCS1v15-SHA256 signature over message with
// the key serial names. It implements auth.Verifier.
func (k *Keys) Verify(_ context.Context, serial, message, signature string) error {
	s := k.snap.Load()
	if s == nil { // a zero Keys, not made by NewKeys
		return errUnknownSerial
	}
	pub := s.bySerial[serial]
	if pub == nil {
		return errUnknownSerial
	}
	return verifyWith(pub, message, signature)
}

// verifyWith checks a base64 RSA-PKCS1v15-SHA256 signature over message.
func verifyWith(pub *rsa.PublicKey, message, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return errBadSignature
	}
	sum := sha256.Sum256([]byte(message))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return errBadSignature
	}
	return nil
}

// key returns the key serial names in the current set, or nil.
func (k *Keys) key(serial string) *rsa.PublicKey {
	if s := k.snap.Load(); s != nil {
		return s.bySerial[serial]
	}
	return nil
}

// GetSerial returns the serial the client announces to WeChat Pay in the
// Wechatpay-Serial request header. It implements auth.Verifier.
func (k *Keys) GetSerial(context.Context) (string, error) {
	s := k.snap.Load()
	switch {
	case s == nil:
		return "", errors.New("wechat keys: not made by NewKeys")
	case s.accept == "":
		return "", errors.New("wechat keys: no key yet")
	}
	return s.accept, nil
}
