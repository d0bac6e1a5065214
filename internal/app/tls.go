package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloadInterval is how often, at most, a handshake looks at the
// certificate files for a renewal.
const certReloadInterval = time.Second

// serverTLS is the TLS configuration of the gRPC server and the HTTP port:
// nil when PAPAYD_TLS_CERT_FILE is unset (plaintext). With
// PAPAYD_TLS_CLIENT_CA_FILE, a client must present a certificate that CA
// signed. The certificate is reloaded when its files change.
func serverTLS(cfg Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		if cfg.TLSClientCAFile != "" {
			return nil, errors.New("PAPAYD_TLS_CLIENT_CA_FILE needs PAPAYD_TLS_CERT_FILE and PAPAYD_TLS_KEY_FILE")
		}
		return nil, nil
	}
	if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
		return nil, errors.New("PAPAYD_TLS_CERT_FILE and PAPAYD_TLS_KEY_FILE go together")
	}
	r, err := newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if cfg.TLSClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("PAPAYD_TLS_CLIENT_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("PAPAYD_TLS_CLIENT_CA_FILE %s: no PEM certificate", cfg.TLSClientCAFile)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// fileStamp is what tells that a file changed: its modification time and
// size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// certReloader serves a certificate and key pair from files, and picks up
// a renewal without a restart: at most every certReloadInterval a
// handshake stats both files, and reloads the pair when either changed. A
// pair that does not load (a half-written renewal, a key that does not
// match) is logged and the last good pair served until the files change
// again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamps    [2]fileStamp // of the files when last loaded (or tried)
	lastCheck time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("PAPAYD_TLS_CERT_FILE, PAPAYD_TLS_KEY_FILE: %w", err)
	}
	r.cert, r.stamps, r.lastCheck = &cert, stamps, r.now()
	return r, nil
}

func (r *certReloader) stat() ([2]fileStamp, error) {
	var s [2]fileStamp
	var err error
	if s[0], err = stampOf(r.certFile); err != nil {
		return s, fmt.Errorf("PAPAYD_TLS_CERT_FILE: %w", err)
	}
	if s[1], err = stampOf(r.keyFile); err != nil {
		return s, fmt.Errorf("PAPAYD_TLS_KEY_FILE: %w", err)
	}
	return s, nil
}

// GetCertificate is the tls.Config hook: the current pair, reloaded first
// if the files changed.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.lastCheck) >= certReloadInterval {
		r.lastCheck = now
		r.reload()
	}
	return r.cert, nil
}

// reload loads the pair if the files changed since the last try. r.mu is
// held.
func (r *certReloader) reload() {
	stamps, err := r.stat()
	if err != nil {
		r.log.Error("TLS certificate not reloaded; serving the previous one", "error", err.Error())
		return
	}
	if stamps == r.stamps {
		return
	}
	r.stamps = stamps
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Error("TLS certificate not reloaded; serving the previous one", "cert_file", r.certFile, "error", err.Error())
		return
	}
	r.cert = &cert
	attrs := []any{"cert_file", r.certFile}
	if leaf := cert.Leaf; leaf != nil {
		attrs = append(attrs, "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
	}
	r.log.Info("TLS certificate reloaded", attrs...)
}

// mTLS reports whether gRPC and the HTTP port require client certificates.
func (a *App) mTLS() bool { return a.tls != nil && a.tls.ClientCAs != nil }

// httpScheme is the HTTP port's URL scheme.
func (a *App) httpScheme() string {
	if a.tls != nil {
		return "https"
	}
	return "http"
}

// serveHTTP serves the HTTP port, over TLS when configured (with HTTP/2).
func (a *App) serveHTTP() error {
	if a.tls == nil {
		return a.httpSrv.Serve(a.httpLis)
	}
	a.httpSrv.TLSConfig = a.tls
	return a.httpSrv.ServeTLS(a.httpLis, "", "")
}

// checkTLSNotify refuses the configurations in which WeChat Pay (or the
// simulator) could not reach /wechatpay/notify: the notify listener is
// plain HTTP, for the merchant's TLS proxy (WeChat requires a publicly
// trusted certificate) and without client certificates (WeChat presents
// none). Without PAPAYD_NOTIFY_ADDR the callback shares the HTTP port,
// which cannot then require one; and the simulator calls back over plain
// HTTP, so sandbox mode over TLS needs the notify listener (or an explicit
// PAPAYD_NOTIFY_URL).
func checkTLSNotify(cfg Config) error {
	if cfg.NotifyAddr != "" || cfg.TLSCertFile == "" {
		return nil
	}
	if cfg.TLSClientCAFile != "" {
		return errors.New("PAPAYD_TLS_CLIENT_CA_FILE needs PAPAYD_NOTIFY_ADDR: WeChat Pay presents no client certificate, so /wechatpay/notify needs its own listener")
	}
	if cfg.Mode == ModeSandbox && cfg.NotifyURL == "" {
		return errors.New("sandbox mode over TLS needs PAPAYD_NOTIFY_ADDR: the simulator calls back over plain HTTP")
	}
	return nil
}
