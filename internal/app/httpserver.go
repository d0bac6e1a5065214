package app

import (
	"net/http"
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
func (a *App) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(readHeaderTimeout, a.cfg.HTTPReadTimeout),
		ReadTimeout:       a.cfg.HTTPReadTimeout,
		WriteTimeout:      wechatCallsInRow*a.cfg.WeChatTimeout + writeMargin,
		IdleTimeout:       a.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// notifyOnly serves notify at notifyPath and 404 everywhere else: the
// handler of the notify listener, the one port exposed to WeChat.
func notifyOnly(notify http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(notifyPath, notify)
	return mux
}
