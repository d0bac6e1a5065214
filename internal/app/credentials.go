package app

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"

	"github.com/papayd/papayd/internal/wechat"
)

// liveCredentials are the keys live mode loads from files.
type liveCredentials struct {
	mchKey   *rsa.PrivateKey
	apiV3Key []byte
	certs    []*x509.Certificate
	pubKey   *rsa.PublicKey
	pubKeyID string
	roots    *x509.CertPool // nil: the system's
}

// wechatConfig is the WeChat client configuration of live mode.
func (lc liveCredentials) wechatConfig(c Config) wechat.Config {
	return wechat.Config{
		Timeout: c.WeChatTimeout, BaseURL: c.WeChatBaseURL, RootCAs: lc.roots,
		MchID: c.SPMchID, MchCertSerial: c.MchCertSerial, MchPrivateKey: lc.mchKey,
		PlatformCerts: lc.certs, PublicKeyID: lc.pubKeyID, PublicKey: lc.pubKey,
	}
}

// loadLive checks every live-mode setting and loads the keys. It reports
// every missing or invalid setting at once, each error naming its setting.
func loadLive(c Config) (liveCredentials, error) {
	var lc liveCredentials
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("live mode: "+format, a...)) }
	required := []struct{ env, val string }{
		{"PAPAYD_WECHATPAY_BASE_URL", c.WeChatBaseURL},
		{"PAPAYD_SP_MCHID", c.SPMchID},
		{"PAPAYD_SP_APPID", c.SPAppID},
		{"PAPAYD_SUB_MCHID", c.SubMchID},
		{"PAPAYD_MCH_CERT_SERIAL", c.MchCertSerial},
		{"PAPAYD_MCH_PRIVATE_KEY_FILE", c.MchPrivateKeyFile},
		{"PAPAYD_APIV3_KEY_FILE", c.APIv3KeyFile},
		{"PAPAYD_NOTIFY_URL", c.NotifyURL},
	}
	for _, r := range required {
		if r.val == "" {
			fail("%s is required", r.env)
		}
	}
	if c.WeChatBaseURL != "" && !isHTTPS(c.WeChatBaseURL) {
		fail("PAPAYD_WECHATPAY_BASE_URL %q is not an https:// URL "+
			"(for a TLS proxy, trust its CA with PAPAYD_WECHATPAY_CA_FILE)", c.WeChatBaseURL)
	}
	if c.NotifyURL != "" && !isHTTPS(c.NotifyURL) && !isLoopbackHTTP(c.NotifyURL) {
		fail("PAPAYD_NOTIFY_URL %q is not an https:// URL (WeChat Pay notifies HTTPS URLs only)", c.NotifyURL)
	}
	if c.WeChatPayCertFile == "" && c.WeChatPayPublicKeyFile == "" {
		fail("PAPAYD_WECHATPAY_CERT_FILE or PAPAYD_WECHATPAY_PUBLIC_KEY_FILE (with PAPAYD_WECHATPAY_PUBLIC_KEY_ID) is required")
	}
	if (c.WeChatPayPublicKeyFile == "") != (c.WeChatPayPublicKeyID == "") {
		fail("PAPAYD_WECHATPAY_PUBLIC_KEY_FILE and PAPAYD_WECHATPAY_PUBLIC_KEY_ID go together")
	}
	var err error
	if c.MchPrivateKeyFile != "" {
		if lc.mchKey, err = loadPrivateKey(c.MchPrivateKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("PAPAYD_MCH_PRIVATE_KEY_FILE: %w", err))
		}
	}
	if c.APIv3KeyFile != "" {
		if lc.apiV3Key, err = loadAPIv3Key(c.APIv3KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("PAPAYD_APIV3_KEY_FILE: %w", err))
		}
	}
	if c.WeChatPayCertFile != "" {
		if lc.certs, err = loadCertificates(c.WeChatPayCertFile); err != nil {
			errs = append(errs, fmt.Errorf("PAPAYD_WECHATPAY_CERT_FILE: %w", err))
		}
	}
	if c.WeChatPayPublicKeyFile != "" {
		if lc.pubKey, err = loadPublicKey(c.WeChatPayPublicKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("PAPAYD_WECHATPAY_PUBLIC_KEY_FILE: %w", err))
		}
		lc.pubKeyID = c.WeChatPayPublicKeyID
	}
	if c.WeChatCAFile != "" {
		if lc.roots, err = loadRoots(c.WeChatCAFile); err != nil {
			errs = append(errs, fmt.Errorf("PAPAYD_WECHATPAY_CA_FILE: %w", err))
		}
	}
	if len(errs) > 0 {
		return liveCredentials{}, errors.Join(errs...)
	}
	return lc, nil
}

// isHTTPS reports whether s is an absolute https:// URL with a host.
func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// isLoopbackHTTP reports whether s is an http:// URL of this machine
// (localhost, 127.0.0.0/8, ::1): one WeChat Pay can never be asked to call,
// only a local stand-in for it (the end-to-end tests, the benchmark).
func isLoopbackHTTP(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// loadRoots returns the system's certificate authorities plus the
// certificates of the PEM file at path (one at least).
func loadRoots(path string) (*x509.CertPool, error) {
	certs, err := readCertificates(path)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, c := range certs {
		roots.AddCert(c)
	}
	return roots, nil
}

// readCertificates parses the CERTIFICATE blocks of the PEM file at path
// (one at least).
func readCertificates(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		if block, raw = pem.Decode(raw); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return certs, nil
}

func readPEM(path, what string) (*pem.Block, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, rest := pem.Decode(raw)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", what)
	}
	return block, rest, nil
}

// loadPrivateKey reads an RSA private key in PKCS#8 or PKCS#1 PEM. Errors
// never include key material.
func loadPrivateKey(path string) (*rsa.PrivateKey, error) {
	block, _, err := readPEM(path, "private key")
	if err != nil {
		return nil, err
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA private key")
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("not a valid PKCS#1 private key")
		}
		return k, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
}

// loadAPIv3Key reads the APIv3 key; a trailing newline is forgiven, any
// other length than 32 bytes is refused.
func loadAPIv3Key(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key := bytes.TrimRight(raw, "\r\n")
	if len(key) != 32 {
		return nil, fmt.Errorf("the APIv3 key must be 32 bytes, the file holds %d", len(key))
	}
	return key, nil
}

// loadCertificates reads one or more platform certificates (a rotation
// overlap may need two).
func loadCertificates(path string) ([]*x509.Certificate, error) {
	certs, err := readCertificates(path)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
			return nil, errors.New("certificate key is not RSA")
		}
	}
	return certs, nil
}

// loadPublicKey reads a PKIX "PUBLIC KEY" PEM.
func loadPublicKey(path string) (*rsa.PublicKey, error) {
	block, _, err := readPEM(path, "public key")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKIX public key")
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA public key")
	}
	return rk, nil
}
