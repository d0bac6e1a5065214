package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestEveryHTTPServerIsBounded: the HTTP port, the notify listener and the
// sandbox's API server all bound reads, writes, idle connections and
// headers; the write timeout outlasts the WeChat Pay calls a request may
// wait for; the sandbox calls back at the notify listener.
func TestEveryHTTPServerIsBounded(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig(nil, env(map[string]string{
		"PAPAYD_GRPC_ADDR": "127.0.0.1:0", "PAPAYD_HTTP_ADDR": "127.0.0.1:0", "PAPAYD_NOTIFY_ADDR": "127.0.0.1:0", "PAPAYD_ADMIN_ADDR": "127.0.0.1:0",
		"PAPAYD_DATA_DIR": t.TempDir(), "PAPAYD_WECHATPAY_TIMEOUT": "3s",
		"PAPAYD_HTTP_READ_TIMEOUT": "7s", "PAPAYD_HTTP_IDLE_TIMEOUT": "11s",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	defer func() {
		if err := a.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	if want := "http://" + a.NotifyAddr() + "/wechatpay/notify"; a.cfg.NotifyURL != want {
		t.Errorf("notify URL %q, want %q", a.cfg.NotifyURL, want)
	}
	for name, srv := range map[string]*http.Server{"HTTP": a.httpSrv, "notify": a.notifySrv, "sandbox": a.sandboxSrv} {
		if srv == nil {
			t.Errorf("%s: no server", name)
			continue
		}
		if srv.ReadTimeout != 7*time.Second || srv.IdleTimeout != 11*time.Second || srv.ReadHeaderTimeout != 7*time.Second {
			t.Errorf("%s: read %v, idle %v, read header %v; want 7s, 11s, 7s", name, srv.ReadTimeout, srv.IdleTimeout, srv.ReadHeaderTimeout)
		}
		if srv.WriteTimeout < 2*3*time.Second+5*time.Second {
			t.Errorf("%s: write timeout %v does not outlast two 3s WeChat Pay calls", name, srv.WriteTimeout)
		}
		if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
			t.Errorf("%s: MaxHeaderBytes %d", name, srv.MaxHeaderBytes)
		}
	}
}

// TestShutdownClosesFreshConnections: a connection that sent no request
// does not hold a graceful Shutdown (net/http waits 5 s for one), while a
// request under way is still answered.
func TestShutdownClosesFreshConnections(t *testing.T) {
	t.Parallel()
	a := &App{cfg: Config{HTTPReadTimeout: 10 * time.Second, HTTPIdleTimeout: 10 * time.Second, WeChatTimeout: time.Second}}
	inHandler, release := make(chan struct{}), make(chan struct{})
	srv := a.newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	fresh, err := net.Dial("tcp", lis.Addr().String()) // sends nothing
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + lis.Addr().String() + "/slow")
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		answer <- string(b)
	}()
	<-inHandler
	begin := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("Shutdown took %v with a connection that sent no request", took)
	}
	if got := <-answer; got != "done" {
		t.Errorf("the request under way got %q, want its answer", got)
	}
}
