package app

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writePair writes a self-signed certificate of serial and its key to
// certFile and keyFile.
func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "papayd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCertReloader: the pair is reloaded when its files change, at most
// every certReloadInterval; a pair that does not load is logged and the
// last good one served.
func TestCertReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, certFile, keyFile, 1)
	var logs lockedBuffer
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	serial := func() int64 {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writePair(t, certFile, keyFile, 2)
	if got := serial(); got != 1 {
		t.Errorf("within the interval: serial %d, want 1 (no stat yet)", got)
	}
	now = now.Add(certReloadInterval)
	if got := serial(); got != 2 {
		t.Errorf("after the interval: serial %d, want 2", got)
	}
	// A half-written renewal: the certificate without its key.
	writePair(t, filepath.Join(dir, "c3.pem"), filepath.Join(dir, "k3.pem"), 3)
	cert3, _ := os.ReadFile(filepath.Join(dir, "c3.pem"))
	if err := os.WriteFile(certFile, cert3, 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certReloadInterval)
	if got := serial(); got != 2 {
		t.Errorf("a certificate without its key: serial %d, want the last good 2", got)
	}
	if !strings.Contains(logs.String(), "TLS certificate not reloaded") {
		t.Errorf("the bad pair was not logged: %s", logs.String())
	}
	key3, _ := os.ReadFile(filepath.Join(dir, "k3.pem"))
	if err := os.WriteFile(keyFile, key3, 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certReloadInterval)
	if got := serial(); got != 3 {
		t.Errorf("the key arrived: serial %d, want 3", got)
	}
	// A file gone: the last good pair stays.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certReloadInterval)
	if got := serial(); got != 3 {
		t.Errorf("key file removed: serial %d, want 3", got)
	}
}

// TestServerTLSRefusals: incomplete or contradictory TLS settings are
// refused before anything listens.
func TestServerTLSRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, certFile, keyFile, 1)
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"cert without key", map[string]string{"PAPAYD_TLS_CERT_FILE": certFile}, "go together"},
		{"client CA without a certificate", map[string]string{"PAPAYD_TLS_CLIENT_CA_FILE": certFile}, "needs PAPAYD_TLS_CERT_FILE"},
		{"key that is not one", map[string]string{"PAPAYD_TLS_CERT_FILE": certFile, "PAPAYD_TLS_KEY_FILE": certFile}, "PAPAYD_TLS_KEY_FILE"},
		{"client CA that is no PEM", map[string]string{"PAPAYD_TLS_CERT_FILE": certFile, "PAPAYD_TLS_KEY_FILE": keyFile,
			"PAPAYD_TLS_CLIENT_CA_FILE": keyFile, "PAPAYD_NOTIFY_ADDR": "127.0.0.1:0"}, "no PEM certificate"},
		{"mTLS without a notify listener", map[string]string{"PAPAYD_TLS_CERT_FILE": certFile, "PAPAYD_TLS_KEY_FILE": keyFile,
			"PAPAYD_TLS_CLIENT_CA_FILE": certFile}, "needs PAPAYD_NOTIFY_ADDR"},
		{"sandbox over TLS without a notify listener", map[string]string{"PAPAYD_TLS_CERT_FILE": certFile, "PAPAYD_TLS_KEY_FILE": keyFile}, "needs PAPAYD_NOTIFY_ADDR"},
	} {
		env := map[string]string{"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0", "PAPAYD_ADMIN_ADDR": "127.0.0.1:0", "PAPAYD_DATA_DIR": t.TempDir()}
		for k, v := range c.env {
			env[k] = v
		}
		cfg, err := ParseConfig(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
