package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/papayd/papayd"
	"github.com/papayd/papayd/internal/db"
	"github.com/papayd/papayd/internal/metrics"
	"github.com/papayd/papayd/internal/peer"
	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/web"
	"github.com/papayd/papayd/internal/webhook"
	"github.com/papayd/papayd/internal/wechat"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// App is a wired papayd, listening but not yet serving.
type App struct {
	cfg Config
	log *slog.Logger

	grpcLis, httpLis, sandboxLis net.Listener
	// notifyLis serves only /wechatpay/notify; nil unless cfg.NotifyAddr.
	notifyLis net.Listener
	// adminLis serves /metrics and /debug/pprof/; nil unless cfg.AdminAddr.
	adminLis   net.Listener
	tls        *tls.Config // of gRPC and the HTTP port; nil: plaintext
	store      store
	replica    string // this process's name among the replicas (lease owner)
	unlock     func() // releases the data directory's lock (SQLite), or the sandbox's (PostgreSQL)
	sandbox    *sandbox.Sandbox
	sandboxSrv *http.Server
	grpcSrv    *grpc.Server
	health     *health.Server
	httpSrv    *http.Server
	notifySrv  *http.Server // nil unless cfg.NotifyAddr
	adminSrv   *http.Server // nil unless cfg.AdminAddr
	svc        *service.Service
	refresher  *wechat.CertRefresher
	metrics    *metrics.Metrics
	webhooks   *webhook.Engine
	// background runs what uses the store besides the servers' handlers:
	// the reconciler, the certificate refresher (its calls write audit
	// rows) and the webhook engine. shutdown cancels it and closes the store only once it is done.
	background     sync.WaitGroup
	stopBackground context.CancelFunc
}

// New opens the listeners and the store and wires everything. On error it
// releases what it opened.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	// Every line logged with a request's context carries its request id.
	log = slog.New(rpc.LogHandler(log.Handler()))
	a := &App{cfg: cfg, log: log}
	wired := false
	defer func() {
		if !wired {
			if a.sandbox != nil {
				a.sandbox.Close()
			}
			a.closeAll()
		}
	}()
	// A Config not from ParseConfig gets the same default and check.
	if err := a.cfg.resolveAuth(); err != nil {
		return nil, err
	}
	var err error
	if a.tls, err = serverTLS(cfg, log); err != nil {
		return nil, err
	}
	if err := checkTLSNotify(cfg); err != nil {
		return nil, err
	}
	if a.grpcLis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	if a.httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("HTTP listener: %w", err)
	}
	if cfg.NotifyAddr != "" {
		if a.notifyLis, err = net.Listen("tcp", cfg.NotifyAddr); err != nil {
			return nil, fmt.Errorf("notify listener: %w", err)
		}
	}
	if cfg.AdminAddr != "" {
		if a.adminLis, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return nil, fmt.Errorf("admin listener: %w", err)
		}
	}
	if !cfg.usesPostgres() {
		// One process per SQLite database. On PostgreSQL, replicas share it.
		if a.unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	// The WeChat configuration first: in sandbox mode it knows sp_mchid
	// only once the simulator's credentials are loaded.
	wcfg, apiV3Key, err := a.wechatConfig(cfg)
	if err != nil {
		return nil, err
	}
	wcfg.OrderQueryLimit = wechat.Limit{PerSecond: cfg.WeChatQueryRate, Burst: cfg.WeChatQueryBurst}
	wcfg.ContractQueryLimit, wcfg.RefundQueryLimit = wcfg.OrderQueryLimit, wcfg.OrderQueryLimit
	a.replica = replicaName(cfg.Replica)
	if a.store, err = openStore(ctx, cfg, cfg.RecordCache); err != nil {
		return nil, err
	}
	if err := a.store.ClaimIdentity(ctx, cfg.Mode, a.cfg.SPMchID); err != nil {
		if cfg.usesPostgres() {
			return nil, fmt.Errorf("%w (each mode and sp_mchid needs its own database)", err)
		}
		return nil, fmt.Errorf("%w (each mode and sp_mchid needs its own PAPAYD_DATA_DIR)", err)
	}
	if cfg.usesPostgres() && cfg.Mode == ModeSandbox {
		if a.unlock, err = lockSandbox(ctx, a.store, a.cfg.SPMchID); err != nil {
			return nil, err
		}
	}
	a.metrics = metrics.New()
	if err := a.metrics.Register(metrics.NewRecordsCollector(a.store, log)); err != nil {
		return nil, err
	}
	a.store.ObserveEvents(a.metrics.Events)
	if sq, ok := a.store.(*db.DB); ok {
		// The SQLite store's group commits and record cache.
		sq.ObserveCommits(a.metrics.Commit)
		if err := a.metrics.RecordCache(sq.CacheStats); err != nil {
			return nil, err
		}
	}
	client, err := wechat.NewClient(wcfg, auditRecorder{a.store, a.metrics, log}, log)
	if err != nil {
		return nil, err
	}
	parser, err := wechat.NewNotificationParser(client.Keys(), apiV3Key, time.Now)
	if err != nil {
		return nil, err
	}
	// Platform certificates from GET /v3/global/certificates: refreshed
	// every 12 h, and on demand when a callback or an answer names a serial
	// papayd does not know (a rotation).
	a.refresher = wechat.NewCertRefresher(client, apiV3Key, wechat.RefresherOptions{Logger: log})
	parser.SetUnknownSerialHook(a.refresher.OnUnknownSerial)
	schedule := make([]time.Duration, len(service.DefaultSchedule))
	for i, d := range service.DefaultSchedule {
		schedule[i] = time.Duration(float64(d) * cfg.ReconcileTimeScale)
	}
	rechecks := make([]time.Duration, len(cfg.FinalRechecks))
	for i, d := range cfg.FinalRechecks {
		rechecks[i] = time.Duration(float64(d) * cfg.ReconcileTimeScale)
	}
	a.webhooks = webhook.New(webhook.Config{RetrySchedule: cfg.WebhookRetrySchedule, InFlight: cfg.WebhookInFlight,
		Owner: a.replica, LeaseTTL: cfg.LeaseTTL, Log: log.With("component", "webhooks")},
		webhookStore{a.store, a.metrics.WebhookDelivery}, encodeEvent)
	svc := service.New(service.Config{
		Replica: a.replica, LeaseTTL: cfg.LeaseTTL, WebhookEndpointsChanged: a.webhooks.EndpointsChanged,
		SubMchID: a.cfg.SubMchID, SPAppID: a.cfg.SPAppID, SubAppID: a.cfg.SubAppID,
		NotifyURL: a.cfg.NotifyURL, SessionTTL: cfg.SessionTTL, MerchantCategoryCode: a.cfg.MerchantCategoryCode,
		MaxChargeAmount: cfg.MaxChargeAmount,
		Reconcile: service.ReconcileConfig{
			FirstCheck: cfg.ReconcileFirstCheck, Schedule: schedule,
			UnpaidTimeout: cfg.ChargeUnpaidTimeout, SignedRecheck: cfg.AgreementRecheck,
			InFlight: cfg.ChargeInFlight, FinalRechecks: rechecks, EventRetention: cfg.EventRetention,
			RefundSpacing: cfg.RefundSpacing, AbnormalRefundCheck: cfg.RefundAbnormalCheck,
		},
	}, a.store, client, systemClock{}, randomIDs{}, log)
	a.svc = svc
	if err := a.metrics.StreamSubscribers(svc.StreamSubscribers); err != nil {
		return nil, err
	}

	var local rpc.Local
	limits := rpc.DefaultLimits
	limits.MaxConcurrentStreams = uint32(cfg.GRPCMaxConcurrentStreams)
	limits.TLS = a.tls
	outer := []grpc.UnaryServerInterceptor{a.metrics.UnaryInterceptor()}
	if a.mTLS() {
		outer = append(outer, peer.UnaryInterceptor())
	}
	auth := rpc.Auth{DefaultRate: cfg.KeyRate, Failed: a.metrics.AuthFailure,
		Refused: func(ctx context.Context, method, outcome string) { svc.RecordRefusal(ctx, method, "", outcome) }}
	switch a.cfg.Auth {
	case AuthKeys:
		auth.Keys = svc
	case AuthMTLS:
		auth.Keys, auth.Names = svc, svc
	}
	if err := a.metrics.WebhookBacklog(a.store, log); err != nil {
		return nil, err
	}
	a.grpcSrv, a.health, local = rpc.NewServer(svc, log, limits, auth, a.webhooks.Notify, outer...)
	gateway, err := web.NewGateway(ctx, local)
	if err != nil {
		return nil, err
	}
	notify := web.NewNotify(parser, svc, a.metrics, log)
	routes := web.Routes{
		Gateway: gateway, Notify: notify, Store: a.store,
		OpenAPI: papayd.OpenAPI, Log: log,
		Ready: newStoreReadiness(a.store),
		Guard: web.Guard{AllowedHosts: cfg.AllowedHosts, CORSOrigins: cfg.CORSOrigins},
	}
	if len(routes.Guard.AllowedHosts) == 0 {
		routes.Guard.AllowedHosts = web.DefaultAllowedHosts(a.HTTPAddr())
	}
	if a.notifyLis != nil {
		// The callback has its own listener: the HTTP port shares nothing
		// with what is exposed to WeChat.
		routes.Notify = http.NotFoundHandler()
		a.notifySrv = a.newHTTPServer(web.RequestIDs(notifyOnly(notify)))
	}
	if a.sandbox != nil {
		routes.Sandbox = a.sandbox.ControlHandler()
		routes.SignPage = a.sandbox.SignPageHandler()
	}
	mux := web.NewMux(routes)
	if a.mTLS() {
		mux = peer.HTTP(mux)
	}
	a.httpSrv = a.newHTTPServer(mux)
	if a.adminLis != nil {
		a.adminSrv = a.newHTTPServer(web.NewAdminMux(a.metrics.Handler()))
		// A CPU profile or a trace takes as long as it was asked for
		// (pprof refuses one longer than the write timeout).
		a.adminSrv.WriteTimeout = adminWriteTimeout
	}
	wired = true
	return a, nil
}

// wechatConfig returns the WeChat client configuration and the APIv3 key:
// from the sandbox's own keys in sandbox mode, from files in live mode. It
// also fills the merchant defaults and the notify URL into a.cfg.
func (a *App) wechatConfig(cfg Config) (wechat.Config, []byte, error) {
	wcfg := wechat.Config{Timeout: cfg.WeChatTimeout}
	if cfg.Mode == ModeLive {
		lc, err := loadLive(cfg)
		if err != nil {
			return wcfg, nil, err
		}
		return lc.wechatConfig(cfg), lc.apiV3Key, nil
	}

	creds, err := sandbox.LoadOrCreateCredentials(filepath.Join(cfg.DataDir, "sandbox"))
	if err != nil {
		return wcfg, nil, err
	}
	if a.sandboxLis, err = net.Listen("tcp", cfg.SandboxAddr); err != nil {
		return wcfg, nil, fmt.Errorf("sandbox listener: %w", err)
	}
	if a.cfg.NotifyURL == "" {
		notifyLis := a.httpLis
		if a.notifyLis != nil {
			notifyLis = a.notifyLis
		}
		a.cfg.NotifyURL = "http://" + notifyLis.Addr().String() + notifyPath
	}
	a.cfg.SPMchID = creds.MchID
	a.cfg.SubMchID = orDefault(a.cfg.SubMchID, creds.SubMchID)
	a.cfg.SPAppID = orDefault(a.cfg.SPAppID, creds.SPAppID)
	a.cfg.SubAppID = orDefault(a.cfg.SubAppID, creds.SubAppID)
	a.cfg.MerchantCategoryCode = orDefault(a.cfg.MerchantCategoryCode, "5999")
	// The simulator's records (contracts, orders, refunds, payers, pending
	// notifications) survive a restart beside its keys.
	if a.sandbox, err = sandbox.New(sandbox.Options{
		Credentials: creds, TimeScale: cfg.SandboxTimeScale,
		TerminationNotifyURL: a.cfg.NotifyURL, Logger: a.log.With("component", "sandbox"),
		SignPageBaseURL: a.httpScheme() + "://" + browserAddr(a.HTTPAddr()),
		StateFile:       filepath.Join(cfg.DataDir, "sandbox", "state.json"),
	}); err != nil {
		return wcfg, nil, err
	}
	a.sandboxSrv = a.newHTTPServer(a.sandbox.APIHandler())
	wcfg.BaseURL = "http://" + a.sandboxLis.Addr().String()
	wcfg.MchID, wcfg.MchCertSerial, wcfg.MchPrivateKey = creds.MchID, creds.MerchantSerial, creds.MerchantKey
	wcfg.PlatformCerts = []*x509.Certificate{creds.PlatformCert}
	return wcfg, creds.APIv3Key, nil
}

// browserAddr is a listener's address as a browser on this machine reaches
// it: an unspecified host (0.0.0.0, [::]) becomes localhost.
func browserAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// GRPCAddr is the gRPC listener's address.
func (a *App) GRPCAddr() string { return a.grpcLis.Addr().String() }

// HTTPAddr is the HTTP listener's address.
func (a *App) HTTPAddr() string { return a.httpLis.Addr().String() }

// NotifyAddr is the notify listener's address, "" when the HTTP port
// serves /wechatpay/notify (PAPAYD_NOTIFY_ADDR unset).
func (a *App) NotifyAddr() string {
	if a.notifyLis == nil {
		return ""
	}
	return a.notifyLis.Addr().String()
}

// AdminAddr is the admin listener's address (/metrics, /debug/pprof/),
// "" when PAPAYD_ADMIN_ADDR is empty.
func (a *App) AdminAddr() string {
	if a.adminLis == nil {
		return ""
	}
	return a.adminLis.Addr().String()
}

// Sandbox is the simulator in sandbox mode, nil in live mode.
func (a *App) Sandbox() *sandbox.Sandbox { return a.sandbox }

// Run serves until ctx is done, then shuts down in order and returns. A
// server failure also ends it, with that error.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, 5)
	go func() { errc <- serve("gRPC", a.grpcSrv.Serve(a.grpcLis)) }()
	go func() { errc <- serve("HTTP", a.serveHTTP()) }()
	attrs := []any{"mode", a.cfg.Mode, "grpc", a.GRPCAddr(), "http", a.httpScheme() + "://" + a.HTTPAddr(),
		"notify_url", a.cfg.NotifyURL, "data_dir", a.cfg.DataDir, "tls", a.tls != nil, "mtls", a.mTLS()}
	if a.notifySrv != nil {
		go func() { errc <- serve("notify", a.notifySrv.Serve(a.notifyLis)) }()
		attrs = append(attrs, "notify", "http://"+a.NotifyAddr())
	}
	if a.adminSrv != nil {
		go func() { errc <- serve("admin", a.adminSrv.Serve(a.adminLis)) }()
		attrs = append(attrs, "admin", "http://"+a.AdminAddr())
	}
	if a.sandbox != nil {
		go func() { errc <- serve("sandbox", a.sandboxSrv.Serve(a.sandboxLis)) }()
		attrs = append(attrs, "sandbox_api", "http://"+a.sandboxLis.Addr().String(),
			"sandbox_control", a.httpScheme()+"://"+a.HTTPAddr()+"/sandbox/v1",
			"sandbox_sign_page", a.httpScheme()+"://"+browserAddr(a.HTTPAddr())+sandbox.SignPagePath)
	}
	a.log.Info("papayd serving", attrs...)
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopBackground = stop
	a.background.Go(func() { runReconciler(bctx, a.svc, a.metrics, a.cfg.ReconcileInterval, a.log) })
	a.background.Go(func() { a.refresher.Run(bctx) })
	a.runWebhooks(bctx)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.shutdown()
	return runErr
}

func serve(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s server: %w", name, err)
}

// shutdown stops in order, within cfg.ShutdownTimeout in all: it cancels
// the reconciler, the certificate refresher and the webhook engine (an
// attempt cut short is made again after a restart; a pass in progress ends
// while the servers drain), stops the simulator's callbacks, drains the
// notify listener, the HTTP port and the gRPC server, closes the admin
// listener and the simulator's API, waits for the reconciler and the refresher to return,
// and closes the store last. If they have not
// returned by the deadline, the store (and the data directory's lock) is
// left to the process's exit: closing it under them would fail their
// writes halfway through a pass.
func (a *App) shutdown() {
	a.log.Info("papayd shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	a.health.Shutdown()
	a.svc.EndStreams() // they would hold the servers' drain to its deadline
	if a.stopBackground != nil {
		a.stopBackground()
	}
	if a.sandbox != nil {
		a.sandbox.Close() // no more callbacks
	}
	if a.notifySrv != nil {
		if err := a.notifySrv.Shutdown(ctx); err != nil {
			_ = a.notifySrv.Close()
		}
	}
	if err := a.httpSrv.Shutdown(ctx); err != nil {
		_ = a.httpSrv.Close()
	}
	stopped := make(chan struct{})
	go func() { a.grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		a.grpcSrv.Stop()
	}
	if a.adminSrv != nil {
		// Last of the servers, so the drain can be watched. A profile in
		// progress is cut: it would hold the shutdown for its duration.
		actx, acancel := context.WithTimeout(ctx, time.Second)
		if err := a.adminSrv.Shutdown(actx); err != nil {
			_ = a.adminSrv.Close()
		}
		acancel()
	}
	if a.sandboxSrv != nil {
		// The simulated WeChat's clients, papayd's own calls, are done or
		// cancelled: close it at once. (A graceful Shutdown waits up to 5 s
		// for a connection that was opened but sent no request.)
		_ = a.sandboxSrv.Close()
	}
	if err := wait(ctx, &a.background); err != nil {
		a.closeListeners()
		a.log.Error("papayd stopped, but the reconciler or the certificate refresher did not return "+
			"within the shutdown timeout; the store is left open", "error", err.Error())
		return
	}
	a.closeAll()
	a.log.Info("papayd stopped")
}

// wait returns nil once wg is done, or ctx's error if ctx ends first.
func wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeListeners closes the listeners that are open.
func (a *App) closeListeners() {
	for _, l := range []net.Listener{a.grpcLis, a.httpLis, a.notifyLis, a.adminLis, a.sandboxLis} {
		if l != nil {
			_ = l.Close()
		}
	}
}

// closeAll releases listeners, the store and the data directory's lock.
// Nothing may use the store any more.
func (a *App) closeAll() {
	a.closeListeners()
	if a.unlock != nil && a.cfg.usesPostgres() {
		a.unlock() // the sandbox's lock is a session of the store's
		a.unlock = nil
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error("closing the store", "error", err.Error())
		}
	}
	if a.unlock != nil {
		a.unlock() // the data directory's, once the database is closed
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// auditRecorder queues each WeChat call's audit row and counts it; a row
// the writer could not store is logged.
type auditRecorder struct {
	store   store
	metrics *metrics.Metrics
	log     *slog.Logger
}

func (r auditRecorder) RecordWeChatCall(ctx context.Context, c service.WeChatCall) error {
	r.metrics.WeChatCall(c)
	return r.store.RecordWeChatCall(ctx, c, func(err error) {
		r.log.Error("wechatpay call not recorded", "method", c.Method, "path", c.Path,
			"wechatpay_request_id", c.RequestID, "error", err.Error())
	})
}
