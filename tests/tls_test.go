package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// testCA is a certificate authority of a test: it signs papayd's server
// certificates and the clients'.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "papayd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), file: filepath.Join(t.TempDir(), "ca.pem")}
	ca.pool.AddCert(cert)
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue returns a leaf certificate of serial signed by the CA, for
// 127.0.0.1 (server) or for a client named by uri, and its key.
func (ca *testCA) issue(t *testing.T, serial int64, server bool, uri string) (certDER, keyDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "papayd test leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	}
	if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key); err != nil {
		t.Fatal(err)
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		t.Fatal(err)
	}
	return certDER, keyDER
}

// serverFiles writes a server certificate of serial and its key into dir
// (replacing the files there) and returns their names.
func (ca *testCA) serverFiles(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	cert, key := ca.issue(t, serial, true, "")
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePEM(t, certFile, "CERTIFICATE", cert)
	writePEM(t, keyFile, "PRIVATE KEY", key)
	return certFile, keyFile
}

// client returns a client certificate named by uri.
func (ca *testCA) client(t *testing.T, uri string) tls.Certificate {
	t.Helper()
	cert, key := ca.issue(t, 100, false, uri)
	pair, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLS runs papayd serving TLS under a certificate of ca (serial 2),
// with settings, and points p's clients (HTTPS and gRPC) at it, trusting
// ca and presenting clientCert when not nil. The notify listener, plain
// HTTP, takes the simulator's callbacks.
func startTLS(t *testing.T, ca *testCA, settings map[string]string, clientCert *tls.Certificate) (*papayd, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := ca.serverFiles(t, dir, 2)
	env := map[string]string{
		"PAPAYD_TLS_CERT_FILE": certFile, "PAPAYD_TLS_KEY_FILE": keyFile, "PAPAYD_NOTIFY_ADDR": "127.0.0.1:0",
	}
	for k, v := range settings {
		env[k] = v
	}
	p := startWith(t, "", env)
	conf := &tls.Config{RootCAs: ca.pool}
	if clientCert != nil {
		conf.Certificates = []tls.Certificate{*clientCert}
	}
	_ = p.conn.Close()
	conn, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	p.conn, p.agreements, p.charges = conn, papayv1.NewAgreementServiceClient(conn), papayv1.NewChargeServiceClient(conn)
	p.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}}
	p.base = "https://" + p.app.HTTPAddr()
	return p, dir
}

// TestTLSServesHTTPSAndGRPC: with a certificate, gRPC and the HTTP port
// (the REST gateway and the sandbox control API) serve TLS only, and an
// agreement is signed through them; the callback arrives on the plain
// notify listener.
func TestTLSServesHTTPSAndGRPC(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p, _ := startTLS(t, ca, nil, nil)

	a := signed(t, p, "oUser-tls") // gRPC over TLS, the sandbox control API over HTTPS
	var got struct {
		Agreement struct{ State string } `json:"agreement"`
	}
	if code := p.do(http.MethodGet, "/v1/agreements/"+a.GetContractId(), nil, &got); code != http.StatusOK || got.Agreement.State != "AGREEMENT_STATE_SIGNED" {
		t.Fatalf("GET over HTTPS: HTTP %d %+v", code, got)
	}
	resp, err := p.http.Get(p.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS answered %s, want HTTP/2", resp.Proto)
	}

	// Plaintext is refused on both ports.
	resp, err = http.Get("http://" + p.app.HTTPAddr() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to the TLS port: 200")
		}
	}
	plain, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("plaintext gRPC to the TLS port: served")
	}
}

// TestMTLSRequiresClientCertificate: with PAPAYD_TLS_CLIENT_CA_FILE, a
// client without a certificate (or with one of another CA) is refused on
// both ports; one with a certificate of the CA is served.
func TestMTLSRequiresClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	cert := ca.client(t, "spiffe://papayd.test/billing")
	p, _ := startTLS(t, ca, map[string]string{"PAPAYD_TLS_CLIENT_CA_FILE": ca.file}, &cert)

	presign(t, p, "oUser-mtls") // gRPC with the certificate
	if code := p.do(http.MethodGet, "/v1/health", nil, nil); code != http.StatusOK {
		t.Fatalf("REST with the certificate: HTTP %d", code)
	}

	other := newTestCA(t).client(t, "spiffe://elsewhere.test/x")
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's certificate": {other}} {
		conf := &tls.Config{RootCAs: ca.pool, Certificates: certs}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
		if resp, err := c.Get(p.base + "/v1/health"); err == nil {
			resp.Body.Close()
			t.Errorf("HTTPS with %s: HTTP %d, want a refused handshake", name, resp.StatusCode)
		}
		conn, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		conn.Close()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC with %s: %v, want Unavailable", name, err)
		}
	}
}

// servedSerial is the serial of the certificate a new TLS connection to
// addr is served.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool, alpn string) int64 {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, NextProtos: []string{alpn}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSCertificateRotation rewrites the certificate files under a
// running papayd: new handshakes on both ports present the new
// certificate, without a restart; a pair that does not load is logged and
// the last good one kept.
func TestTLSCertificateRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p, dir := startTLS(t, ca, nil, nil)
	ports := map[string]string{"HTTP": p.app.HTTPAddr(), "gRPC": p.app.GRPCAddr()}
	serials := func() map[string]int64 {
		return map[string]int64{"HTTP": servedSerial(t, ports["HTTP"], ca.pool, "http/1.1"), "gRPC": servedSerial(t, ports["gRPC"], ca.pool, "h2")}
	}
	if got := serials(); got["HTTP"] != 2 || got["gRPC"] != 2 {
		t.Fatalf("serials %v, want 2", got)
	}
	presign(t, p, "oUser-before-rotation")

	ca.serverFiles(t, dir, 3)
	eventually(t, "serial 3 on both ports", func() bool {
		got := serials()
		return got["HTTP"] == 3 && got["gRPC"] == 3
	})
	presign(t, p, "oUser-after-rotation") // the open connection goes on; new ones meet serial 3

	// A broken renewal: the last good pair stays.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad pair logged", func() bool {
		_ = serials()
		return strings.Contains(p.log.String(), "TLS certificate not reloaded")
	})
	if got := serials(); got["HTTP"] != 3 || got["gRPC"] != 3 {
		t.Fatalf("after a bad renewal: serials %v, want 3", got)
	}
	ca.serverFiles(t, dir, 4)
	eventually(t, "serial 4 on both ports", func() bool {
		got := serials()
		return got["HTTP"] == 4 && got["gRPC"] == 4
	})
}
