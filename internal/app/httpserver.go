package app

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// notifyPath is the one path WeChat Pay calls back.
const notifyPath = "/wechatpay/notify"

// HTTP limits every listener shares. A request waits for at most
// wechatCallsInRow WeChat Pay calls one after the other (a presign retry
// queries the contract, then presigns); writeMargin is what it may take
// beyond them (the store, the gateway, writing the answer).
const (
	readHeaderTimeout = 10 * time.Second
	maxHeaderBytes    = 64 << 10
	writeMargin       = 10 * time.Second
	wechatCallsInRow  = 2
	// adminWriteTimeout bounds an answer of the admin listener, which is
	// as long as the longest profile or trace it may be asked for.
	adminWriteTimeout = 5 * time.Minute
)

// newHTTPServer returns an http.Server for h with papayd's limits: a
// client must send its whole request within the read timeout, an answer
// is written within the WeChat Pay deadlines it may wait for plus a
// margin (the write timeout cuts the connection, not the use case), an idle
// keep-alive connection is closed after the idle timeout, and headers are
// bounded.
//
// A graceful Shutdown closes at once the connections that have sent no
// request yet (net/http would wait 5 s for each): none is served once the
// listener is closed.
func (a *App) newHTTPServer(h http.Handler) *http.Server {
	var fresh freshConns
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(readHeaderTimeout, a.cfg.HTTPReadTimeout),
		ReadTimeout:       a.cfg.HTTPReadTimeout,
		WriteTimeout:      wechatCallsInRow*a.cfg.WeChatTimeout + writeMargin,
		IdleTimeout:       a.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         fresh.track,
	}
	srv.RegisterOnShutdown(fresh.close)
	return srv
}

// freshConns are a server's connections that have sent no request yet.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

// track is the server's ConnState hook.
func (f *freshConns) track(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != http.StateNew {
		delete(f.m, c)
		return
	}
	if f.m == nil {
		f.m = map[net.Conn]struct{}{}
	}
	f.m[c] = struct{}{}
}

// close closes them; Shutdown calls it after closing the listeners.
func (f *freshConns) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		_ = c.Close()
	}
	clear(f.m)
}

// notifyOnly serves notify at notifyPath and 404 everywhere else: the
// handler of the notify listener, the one port exposed to WeChat.
func notifyOnly(notify http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(notifyPath, notify)
	return mux
}
