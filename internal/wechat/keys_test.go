package wechat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := "1767225600\nnonce\n{}\n"
	k, err := NewKeys([]*x509.Certificate{rotatedCert, platformCert}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := k.GetSerial(ctx); s != rotatedSerial {
		t.Errorf("GetSerial %q, want the newest certificate %q", s, rotatedSerial)
	}
	if err := k.Verify(ctx, platformSerial, msg, sign(platformKey, msg)); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := k.Verify(ctx, rotatedSerial, msg, sign(platformKey, msg)); err != errBadSignature {
		t.Errorf("Verify with the wrong certificate: %v", err)
	}
	if err := k.Verify(ctx, "platformserial", msg, sign(platformKey, msg)); err != errUnknownSerial {
		t.Errorf("Verify with an unknown serial: %v", err)
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ec"}, NotBefore: notifyNow, NotAfter: notifyNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SetCertificates([]*x509.Certificate{platformCert, ecCert}); err == nil {
		t.Error("an ECDSA certificate was accepted")
	}
	if _, err := NewKeys([]*x509.Certificate{platformCert}, platformSerial, &publicModeKey.PublicKey); err == nil {
		t.Error("a public key id equal to a certificate serial was accepted")
	}

	var zero Keys
	if err := zero.Verify(ctx, platformSerial, msg, sign(platformKey, msg)); err == nil {
		t.Error("a zero Keys verified a signature")
	}
	if _, err := zero.GetSerial(ctx); err == nil {
		t.Error("a zero Keys has a serial")
	}
}
