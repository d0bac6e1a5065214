package wechat

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// certWithin makes a self-signed certificate for key, valid from nb to na.
func certWithin(key *rsa.PrivateKey, serialHex string, nb, na time.Time) *x509.Certificate {
	serial, _ := new(big.Int).SetString(serialHex, 16)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "test"}, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

const expiredSerial = "0E0000000000000000000000000000000000000E"

var expiredCert = certWithin(platformKey, expiredSerial, time.Now().AddDate(-2, 0, 0), time.Now().AddDate(0, 0, -1))

// listed is one entry of a certificate list as a test writes it.
type listed struct {
	cert      *x509.Certificate
	serialNo  string // default: the certificate's serial
	apiKey    []byte // default: testAPIv3Key
	nonce     string // default: 12 bytes
	algorithm string // default: AEAD_AES_256_GCM
	plain     []byte // default: the certificate's PEM
}

// certList returns the JSON of GET /v3/global/certificates.
func certList(entries ...listed) string {
	data := []map[string]any{}
	for _, e := range entries {
		if e.serialNo == "" {
			e.serialNo = fmt.Sprintf("%X", e.cert.SerialNumber.Bytes())
		}
		if e.apiKey == nil {
			e.apiKey = testAPIv3Key
		}
		if e.nonce == "" {
			e.nonce = "61f9c719728a"
		}
		if e.algorithm == "" {
			e.algorithm = aeadAlgorithm
		}
		if e.plain == nil {
			e.plain = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.cert.Raw})
		}
		data = append(data, map[string]any{
			"serial_no": e.serialNo, "effective_time": e.cert.NotBefore.Format(time.RFC3339), "expire_time": e.cert.NotAfter.Format(time.RFC3339),
			"encrypt_certificate": map[string]any{"algorithm": e.algorithm, "nonce": e.nonce, "associated_data": "certificate",
				"ciphertext": seal(e.apiKey, e.nonce, "certificate", e.plain)},
		})
	}
	b, err := marshal(map[string]any{"data": data})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// certEndpoint is the fake's certificate list, replaceable during a test;
// other paths answer with other.
type certEndpoint struct {
	mu        sync.Mutex
	answer    fakeAnswer
	downloads atomic.Int32
	other     func(gotRequest) fakeAnswer
}

func (e *certEndpoint) set(a fakeAnswer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answer = a
}

func (e *certEndpoint) serve(r gotRequest) fakeAnswer {
	if r.Path != certificatesPath {
		if e.other == nil {
			return fakeAnswer{Status: 204}
		}
		return e.other(r)
	}
	e.downloads.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.answer
}

// newCertTest returns a fake WeChat whose certificate list is e (at first
// platformCert and rotatedCert, signed with platformKey), a client of it
// (edit changes its config first), and a refresher of that client.
func newCertTest(t *testing.T, edit func(*Config), opts RefresherOptions) (*certEndpoint, *fakeWeChat, *Client, *fakeRecorder, *CertRefresher) {
	t.Helper()
	e := &certEndpoint{answer: fakeAnswer{Status: 200, Sign: signPlatform, Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})}}
	f := newFakeWeChat(t, e.serve)
	c, rec := newTestClient(t, f, edit)
	return e, f, c, rec, NewCertRefresher(c, testAPIv3Key, opts)
}

// verifies reports whether keys verify a signature by key under serial.
func verifies(k *Keys, key *rsa.PrivateKey, serial string) error {
	msg := "1767225600\nnonce\n{}\n"
	return k.Verify(context.Background(), serial, msg, sign(key, msg))
}

func TestRefreshPublishes(t *testing.T) {
	t.Parallel()
	e, f, c, rec, r := newCertTest(t, nil, RefresherOptions{})
	if err := verifies(c.Keys(), publicModeKey, rotatedSerial); !errors.Is(err, errUnknownSerial) {
		t.Fatalf("before: %v", err)
	}
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := verifies(c.Keys(), publicModeKey, rotatedSerial); err != nil {
		t.Errorf("the new certificate: %v", err)
	}
	if err := verifies(c.Keys(), platformKey, platformSerial); err != nil {
		t.Errorf("the old certificate: %v", err)
	}
	req := f.requests()[0]
	if req.Method != "GET" || req.Path != "/v3/global/certificates" || req.Header.Get("Wechatpay-Serial") != platformSerial {
		t.Errorf("request %s %s, Wechatpay-Serial %q", req.Method, req.Path, req.Header.Get("Wechatpay-Serial"))
	}
	if calls := rec.recorded(); len(calls) != 1 || calls[0].Path != certificatesPath || calls[0].HTTPStatus != 200 {
		t.Errorf("audit %+v", calls)
	}
	// The client announces the newest certificate, and answers signed with
	// it verify.
	e.other = nil
	if err := terminate(c); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[1].Header.Get("Wechatpay-Serial"); got != rotatedSerial {
		t.Errorf("announced %q, want %q", got, rotatedSerial)
	}
}

func TestRefreshKeepsSetOnError(t *testing.T) {
	t.Parallel()
	otherKey := []byte("fedcba9876543210FEDCBA9876543210")
	both := func(l listed) string { return certList(listed{cert: platformCert}, l) }
	tests := []struct {
		name   string
		answer fakeAnswer
		want   string // in the error
	}{
		{"wrong APIv3 key", fakeAnswer{Status: 200, Sign: signPlatform,
			Body: certList(listed{cert: platformCert, apiKey: otherKey}, listed{cert: rotatedCert, apiKey: otherKey})}, "does not decrypt"},
		{"one entry under a wrong key", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, apiKey: otherKey})}, "does not decrypt"},
		{"serial mismatch", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, serialNo: "ABCDEF"})}, "is not its serial"},
		{"serial of another listed certificate", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, serialNo: platformSerial})}, "is not its serial"},
		{"only expired", fakeAnswer{Status: 200, Sign: signPlatform, Body: certList(listed{cert: expiredCert})}, "valid now"},
		{"nonce 13 bytes", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, nonce: "61f9c719728ab"})}, "12 bytes"},
		{"nonce empty", fakeAnswer{Status: 200, Sign: signPlatform, Body: strings.ReplaceAll(certList(listed{cert: rotatedCert}), `"61f9c719728a"`, `""`)}, "12 bytes"},
		{"other algorithm", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, algorithm: "AEAD_SM4_GCM"})}, "algorithm"},
		{"not PEM", fakeAnswer{Status: 200, Sign: signPlatform, Body: both(listed{cert: rotatedCert, plain: []byte("hello")})}, "PEM"},
		{"PEM not a certificate", fakeAnswer{Status: 200, Sign: signPlatform,
			Body: both(listed{cert: rotatedCert, plain: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})})}, "does not parse"},
		{"not encrypted", fakeAnswer{Status: 200, Sign: signPlatform, Body: `{"data":[{"serial_no":"X"}]}`}, "not encrypted"},
		{"empty list", fakeAnswer{Status: 200, Sign: signPlatform, Body: `{"data":[]}`}, "no platform certificate"},
		{"not JSON", fakeAnswer{Status: 200, Sign: signPlatform, Body: `<html>`}, "not a certificate list"},
		{"data not a list", fakeAnswer{Status: 200, Sign: signPlatform, Body: `{"data":{"serial_no":1}}`}, "not a certificate list"},
		{"unsigned", fakeAnswer{Status: 200, Sign: signNone, Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})}, "not signed"},
		{"forged", fakeAnswer{Status: 200, Sign: signForged, Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})}, "does not verify"},
		{"stale", fakeAnswer{Status: 200, Sign: signStale, Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})}, "stale"},
		{"signed under an unknown, unlisted serial", fakeAnswer{Status: 200, Sign: signPublicKey,
			Body: certList(listed{cert: platformCert}, listed{cert: rotatedCert})}, "neither known nor listed"},
		{"signed by an expired listed certificate", fakeAnswer{Status: 200, Sign: signRotated,
			Body: certList(listed{cert: platformCert}, listed{cert: certWithin(publicModeKey, rotatedSerial, time.Now().AddDate(-1, 0, 0), time.Now().Add(-time.Hour))})},
			"neither known nor listed"},
		{"system error", fakeAnswer{Status: 500, Body: `{"code":"SYSTEM_ERROR","message":"m"}`}, "SYSTEM_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, _, c, _, r := newCertTest(t, nil, RefresherOptions{})
			e.set(tt.answer)
			err := r.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Refresh: %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "BEGIN CERTIFICATE") || strings.Contains(err.Error(), testAPIv3KeyChars) {
				t.Errorf("error leaks: %v", err)
			}
			if err := verifies(c.Keys(), platformKey, platformSerial); err != nil {
				t.Errorf("the old set was not kept: %v", err)
			}
			if err := verifies(c.Keys(), publicModeKey, rotatedSerial); !errors.Is(err, errUnknownSerial) {
				t.Errorf("part of a refused download was published: %v", err)
			}
		})
	}
}

func TestRefreshSkipsCertificatesNotValidNow(t *testing.T) {
	t.Parallel()
	future := certWithin(publicModeKey, rotatedSerial, time.Now().Add(2*time.Minute), time.Now().AddDate(5, 0, 0))
	e, _, c, _, r := newCertTest(t, nil, RefresherOptions{})
	e.set(fakeAnswer{Status: 200, Sign: signPlatform, Body: certList(listed{cert: expiredCert}, listed{cert: platformCert}, listed{cert: future})})
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verifies(c.Keys(), platformKey, platformSerial); err != nil {
		t.Errorf("the valid certificate: %v", err)
	}
	for _, serial := range []string{expiredSerial, rotatedSerial} {
		if c.Keys().key(serial) != nil {
			t.Errorf("%s published", serial)
		}
	}
	// Once the new certificate is valid, the next refresh publishes it
	// (and retires the expired one for good).
	r.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verifies(c.Keys(), publicModeKey, rotatedSerial); err != nil {
		t.Errorf("the certificate now valid: %v", err)
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e, _, c, _, r := newCertTest(t, func(cfg *Config) { cfg.MaxAttempts = 1 }, RefresherOptions{})
	ctx := context.Background()
	// Overlap: both listed, both verify.
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if verifies(c.Keys(), platformKey, platformSerial) != nil || verifies(c.Keys(), publicModeKey, rotatedSerial) != nil {
		t.Fatal("during the overlap both certificates must verify")
	}
	// The old one is retired: only the new one is listed, signed by it.
	e.set(fakeAnswer{Status: 200, Sign: signRotated, Body: certList(listed{cert: rotatedCert})})
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := verifies(c.Keys(), publicModeKey, rotatedSerial); err != nil {
		t.Errorf("the new certificate: %v", err)
	}
	if err := verifies(c.Keys(), platformKey, platformSerial); !errors.Is(err, errUnknownSerial) {
		t.Errorf("the retired certificate still verifies: %v", err)
	}
	// An answer signed by the retired one is refused, even after the
	// on-demand download it causes.
	e.other = func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signPlatform} }
	before := e.downloads.Load()
	if err := terminate(c); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Errorf("an answer of the retired certificate: %v", err)
	}
	if n := e.downloads.Load() - before; n != 1 {
		t.Errorf("%d on-demand downloads, want 1", n)
	}
	e.other = func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signRotated} }
	if err := terminate(c); err != nil {
		t.Errorf("an answer of the new certificate: %v", err)
	}
}

func TestRefreshKeepsPublicKey(t *testing.T) {
	t.Parallel()
	e, f, c, _, r := newCertTest(t, func(cfg *Config) {
		cfg.PublicKeyID, cfg.PublicKey = testPublicKeyID, &publicModeKey.PublicKey
	}, RefresherOptions{})
	// Announcing the public key id, the client gets key-signed answers.
	e.set(fakeAnswer{Status: 200, Sign: signPublicKey, Body: certList(listed{cert: rotatedCert})})
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Header.Get("Wechatpay-Serial"); got != testPublicKeyID {
		t.Errorf("announced %q", got)
	}
	if verifies(c.Keys(), publicModeKey, testPublicKeyID) != nil || verifies(c.Keys(), publicModeKey, rotatedSerial) != nil {
		t.Error("the public key or the new certificate does not verify")
	}
	if !errors.Is(verifies(c.Keys(), platformKey, platformSerial), errUnknownSerial) {
		t.Error("the unlisted certificate still verifies")
	}
}

func TestRefreshBootstrap(t *testing.T) {
	t.Parallel()
	bootstrap := func(cfg *Config) { cfg.PlatformCerts, cfg.DownloadCertificates = nil, true }
	t.Run("refresh", func(t *testing.T) {
		t.Parallel()
		e, f, c, _, r := newCertTest(t, bootstrap, RefresherOptions{})
		e.set(fakeAnswer{Status: 200, Sign: signPlatform, Body: certList(listed{cert: platformCert})})
		if err := r.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h := f.requests()[0].Header; h.Get("Wechatpay-Serial") != "" {
			t.Errorf("announced %q without keys", h.Get("Wechatpay-Serial"))
		}
		if err := terminate(c); err != nil {
			t.Errorf("after the bootstrap: %v", err)
		}
	})
	t.Run("signed by no listed certificate", func(t *testing.T) {
		t.Parallel()
		e, _, c, _, r := newCertTest(t, bootstrap, RefresherOptions{})
		e.set(fakeAnswer{Status: 200, Sign: signRotated, Body: certList(listed{cert: platformCert})})
		if err := r.Refresh(context.Background()); err == nil {
			t.Fatal("accepted")
		}
		if c.Keys().key(platformSerial) != nil {
			t.Error("published")
		}
	})
	t.Run("forged", func(t *testing.T) {
		t.Parallel()
		e, _, c, _, r := newCertTest(t, bootstrap, RefresherOptions{})
		e.set(fakeAnswer{Status: 200, Sign: signForged, Body: certList(listed{cert: platformCert})})
		if err := r.Refresh(context.Background()); err == nil || c.Keys().key(platformSerial) != nil {
			t.Fatalf("forged answer: %v", err)
		}
	})
	t.Run("on demand at the first call", func(t *testing.T) {
		t.Parallel()
		e, _, c, rec, _ := newCertTest(t, func(cfg *Config) { bootstrap(cfg); cfg.MaxAttempts = 1 }, RefresherOptions{})
		e.other = func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signPlatform} }
		if err := terminate(c); err != nil {
			t.Fatal(err)
		}
		calls := rec.recorded()
		if len(calls) != 3 || calls[1].Path != certificatesPath || calls[2].HTTPStatus != 204 {
			t.Errorf("audit %+v, want the call, the download, the call", calls)
		}
	})
}

func TestClientOnDemandRefresh(t *testing.T) {
	t.Parallel()
	e, _, c, rec, _ := newCertTest(t, func(cfg *Config) { cfg.MaxAttempts = 1 }, RefresherOptions{})
	e.other = func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signRotated} }
	if err := terminate(c); err != nil {
		t.Fatalf("an answer of a new certificate: %v", err)
	}
	calls := rec.recorded()
	if len(calls) != 3 || calls[0].Error == "" || calls[1].Path != certificatesPath || calls[2].HTTPStatus != 204 || calls[2].Error != "" {
		t.Errorf("audit %+v, want the unverified call, the download, the call", calls)
	}
	e.other = func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204, Sign: signPublicKey} }
	// Unknown everywhere, within the on-demand gap: no download, the error.
	if err := terminate(c); !errors.Is(err, service.ErrWeChatUnavailable) {
		t.Errorf("err %v", err)
	}
	if n := e.downloads.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestNotificationOnDemandRefresh(t *testing.T) {
	t.Parallel()
	e, _, c, _, r := newCertTest(t, nil, RefresherOptions{})
	p := newTestParser(t, c.Keys())
	h, body := notif{id: "EV-NEW", eventType: "PAPAY.SIGN", plaintext: signPlaintext, sign: signRotated}.build()
	if _, err := p.Parse(h, body); !errors.Is(err, service.ErrNotificationUnauthentic) {
		t.Fatalf("without the hook: %v", err)
	}
	if n := e.downloads.Load(); n != 0 {
		t.Fatalf("%d downloads without the hook", n)
	}
	p.SetUnknownSerialHook(r.OnUnknownSerial)
	n, err := p.ParseContext(context.Background(), h, body)
	if err != nil || n.ID != "EV-NEW" {
		t.Fatalf("after the on-demand download: %+v, %v", n, err)
	}
	if got := e.downloads.Load(); got != 1 {
		t.Errorf("%d downloads, want 1", got)
	}
	// A known serial costs nothing.
	if _, err := p.Parse(h, body); err != nil {
		t.Fatal(err)
	}
	if got := e.downloads.Load(); got != 1 {
		t.Errorf("%d downloads, want 1", got)
	}
	p.SetUnknownSerialHook(nil)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestOnDemandRateLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	e, _, c, _, r := newCertTest(t, nil, RefresherOptions{Now: clock.now})
	e.set(fakeAnswer{Status: 200, Sign: signPlatform, Body: certList(listed{cert: platformCert}), Delay: 50 * time.Millisecond})
	p := newTestParser(t, c.Keys())
	p.SetUnknownSerialHook(r.OnUnknownSerial)
	ctx := context.Background()

	// A flood of made-up serials, at once: one download.
	flood := func(prefix string, k int) {
		var wg sync.WaitGroup
		for i := range k {
			wg.Go(func() {
				serial := fmt.Sprintf("%s%036X", prefix, i)
				if i%2 == 0 {
					if r.OnUnknownSerial(ctx, serial) {
						t.Errorf("%s known", serial)
					}
					return
				}
				h, body := notif{id: "EV", eventType: "PAPAY.SIGN", plaintext: signPlaintext}.build()
				h.Set("Wechatpay-Serial", serial)
				if _, err := p.Parse(h, body); !errors.Is(err, service.ErrNotificationUnauthentic) {
					t.Errorf("forged serial: %v", err)
				}
			})
		}
		wg.Wait()
	}
	flood("AAAA", 40)
	if n := e.downloads.Load(); n != 1 {
		t.Fatalf("%d downloads for a flood, want 1", n)
	}
	// Within the gap: none.
	clock.add(DefaultMinOnDemandGap - time.Second)
	flood("BBBB", 20)
	if n := e.downloads.Load(); n != 1 {
		t.Fatalf("%d downloads within the gap, want 1", n)
	}
	// After the gap: one more.
	clock.add(2 * time.Second)
	flood("CCCC", 20)
	if n := e.downloads.Load(); n != 2 {
		t.Fatalf("%d downloads after the gap, want 2", n)
	}
	// A known serial never downloads; nor do absurd ones.
	clock.add(2 * DefaultMinOnDemandGap)
	if !r.OnUnknownSerial(ctx, platformSerial) || r.OnUnknownSerial(ctx, "") || r.OnUnknownSerial(ctx, strings.Repeat("A", 500)) {
		t.Error("OnUnknownSerial")
	}
	if n := e.downloads.Load(); n != 2 {
		t.Errorf("%d downloads, want 2", n)
	}
	// A scheduled refresh does not use the on-demand allowance.
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r.OnUnknownSerial(ctx, "DDDD") {
		t.Error("DDDD known")
	}
	if n := e.downloads.Load(); n != 4 {
		t.Errorf("%d downloads, want 4", n)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	e, _, _, _, r := newCertTest(t, nil, RefresherOptions{Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.downloads.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d downloads in 5 s with a 10 ms interval", e.downloads.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	n := e.downloads.Load()
	time.Sleep(50 * time.Millisecond)
	if m := e.downloads.Load(); m != n {
		t.Errorf("downloads went on after Run returned: %d → %d", n, m)
	}
}

func TestRunRetriesSoonerAfterFailure(t *testing.T) {
	t.Parallel()
	e, _, _, _, r := newCertTest(t, nil, RefresherOptions{Interval: 20 * time.Millisecond})
	e.set(fakeAnswer{Status: 200, Sign: signPlatform, Body: `{"data":[]}`})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.downloads.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if n := e.downloads.Load(); n < 3 {
		t.Errorf("%d downloads: Run gave up after failures", n)
	}
}

func TestNewCertRefresherOptions(t *testing.T) {
	t.Parallel()
	f := newFakeWeChat(t, func(gotRequest) fakeAnswer { return fakeAnswer{Status: 204} })
	c, _ := newTestClient(t, f, nil)
	for _, tt := range []struct {
		in, want time.Duration
	}{{0, 12 * time.Hour}, {-time.Second, 12 * time.Hour}, {24 * time.Hour, 12 * time.Hour}, {time.Hour, time.Hour}} {
		r := NewCertRefresher(c, testAPIv3Key, RefresherOptions{Interval: tt.in})
		if r.interval != tt.want || r.gap != DefaultMinOnDemandGap || r.now == nil || r.log == nil {
			t.Errorf("Interval %v: %v, gap %v", tt.in, r.interval, r.gap)
		}
	}
	r := NewCertRefresher(c, []byte("short"), RefresherOptions{Logger: slog.New(slog.DiscardHandler)})
	if err := r.Refresh(context.Background()); err == nil || len(f.requests()) != 0 {
		t.Errorf("a 5-byte APIv3 key: %v, %d requests", err, len(f.requests()))
	}
	var none *Client
	r = NewCertRefresher(none, testAPIv3Key, RefresherOptions{})
	if r.Refresh(context.Background()) == nil || r.OnUnknownSerial(context.Background(), "X") {
		t.Error("a refresher without a client")
	}
}

// FuzzCertificateList: a download answer, validly signed whatever its
// body, never panics and is published only if every entry checks out.
func FuzzCertificateList(f *testing.F) {
	f.Add([]byte(certList(listed{cert: platformCert}, listed{cert: rotatedCert})))
	f.Add([]byte(certList(listed{cert: expiredCert})))
	f.Add([]byte(certList(listed{cert: rotatedCert, plain: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")})))
	f.Add([]byte(`{"data":[{"serial_no":"1","encrypt_certificate":{"algorithm":"AEAD_AES_256_GCM","nonce":"0123456789ab","ciphertext":""}}]}`))
	f.Add([]byte(`{"data":null}`))
	keys, err := NewKeys([]*x509.Certificate{platformCert}, "", nil)
	if err != nil {
		f.Fatal(err)
	}
	r := &CertRefresher{c: &Client{keys: keys}, apiV3Key: testAPIv3Key, log: slog.New(slog.DiscardHandler), now: time.Now}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := make(map[string][]string)
		a := answer{body: body, header: h}
		signAnswer(a.header, signPlatform, body, time.Now())
		certs, err := r.certificates(a)
		if err != nil {
			if certs != nil {
				t.Fatal("certificates with an error")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificate and no error")
		}
		for _, c := range certs {
			if _, ok := c.PublicKey.(*rsa.PublicKey); !ok || time.Now().After(c.NotAfter) {
				t.Fatalf("published %v", c.Subject)
			}
		}
	})
}
