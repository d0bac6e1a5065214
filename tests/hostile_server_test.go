package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// TestNotifyListenerServesOnlyTheCallback runs papayd with
// PAPAYD_NOTIFY_ADDR: that listener answers /wechatpay/notify and 404 to
// everything else, the main HTTP port no longer serves the callback, and
// the sandbox's callbacks arrive through the notify listener.
func TestNotifyListenerServesOnlyTheCallback(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{"PAPAYD_NOTIFY_ADDR": "127.0.0.1:0"})
	notify := "http://" + p.app.NotifyAddr()
	if notify == p.base {
		t.Fatalf("the notify listener is the HTTP port, %s", notify)
	}
	for _, path := range []string{"/healthz", "/openapi.json", "/metrics", "/v1/agreements", "/sandbox/v1/sessions/x:sign", "/"} {
		resp, err := p.http.Get(notify + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("notify listener GET %s: HTTP %d, want 404", path, resp.StatusCode)
		}
	}
	post := func(base string) int {
		resp, err := p.http.Post(base+"/wechatpay/notify", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(notify); code == http.StatusNotFound || code < 400 {
		t.Errorf("notify listener POST an unsigned callback: HTTP %d, want the callback handler's refusal", code)
	}
	if code := post(p.base); code != http.StatusNotFound {
		t.Errorf("HTTP port POST /wechatpay/notify: HTTP %d, want 404 when PAPAYD_NOTIFY_ADDR is set", code)
	}
	// The sandbox's signing callback reaches papayd through the notify listener.
	a := signed(t, p, "oUser-notify-listener")
	if got := len(p.notificationsFor(a.GetOutContractCode())); got == 0 {
		t.Fatal("no callback recorded for the signed agreement")
	}
}

// TestGRPCRefusesOversizedMessage sends a 2 MiB request: it is refused
// with ResourceExhausted, and the server goes on serving.
func TestGRPCRefusesOversizedMessage(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	_, err := p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{
		PlanId: planID, Openid: "oUser-big", UserDisplayName: strings.Repeat("x", 2<<20),
	})
	if got := status.Code(err); got != codes.ResourceExhausted {
		t.Fatalf("2 MiB request: %v, want ResourceExhausted", err)
	}
	presign(t, p, "oUser-after-big")
}

// rawCodec sends a []byte as the message's bytes and receives the answer's
// bytes, so a test can put anything on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestMalformedGRPCRequestIsInvalidArgument sends bytes that are no
// protobuf message: the caller's error, InvalidArgument, not Internal.
func TestMalformedGRPCRequestIsInvalidArgument(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	ctx := context.Background()
	for _, method := range []string{
		papayv1.AgreementService_GetAgreement_FullMethodName,
		papayv1.ChargeService_CreateCharge_FullMethodName,
		healthpb.Health_Check_FullMethodName,
	} {
		in, out := []byte{0xff, 0xff, 0xff}, []byte(nil)
		err := p.conn.Invoke(ctx, method, &in, &out, grpc.ForceCodecV2(rawCodec{}))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("%s with malformed bytes: %v, want InvalidArgument", method, err)
		}
	}
	// A well-formed call still works.
	getByCode(t, p, presign(t, p, "oUser-after-malformed").GetAgreement().GetOutContractCode())
}

// TestSlowBodyIsCutOff trickles a request body one byte a second: papayd
// drops the connection within its read timeout, serving others meanwhile.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	p := startWith(t, "", map[string]string{"PAPAYD_HTTP_READ_TIMEOUT": readTimeout.String()})
	conn, err := net.Dial("tcp", p.app.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "POST /v1/agreements:presign HTTP/1.1\r\nHost: papayd\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	go func() {
		for range 60 {
			time.Sleep(time.Second)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	if code := p.do(http.MethodGet, "/healthz", nil, nil); code != http.StatusOK {
		t.Errorf("/healthz while a body trickles: HTTP %d", code)
	}
	select {
	case took := <-closed:
		t.Logf("slow-body connection cut off after %v", took.Round(time.Millisecond))
	case <-time.After(readTimeout + 5*time.Second):
		t.Fatalf("slow-body connection still open after %v (read timeout %v)", readTimeout+5*time.Second, readTimeout)
	}
}

// TestIdleKeepAliveIsClosed keeps a connection open after one request: it
// is closed after the idle timeout.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	p := startWith(t, "", map[string]string{"PAPAYD_HTTP_IDLE_TIMEOUT": idle.String()})
	conn, err := net.Dial("tcp", p.app.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: papayd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("idle keep-alive connection still open after %v (idle timeout %v): %v", time.Since(start).Round(time.Millisecond), idle, err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		t.Errorf("unexpected bytes after the response: %q", rest)
	}
	t.Logf("idle connection closed after %v", time.Since(start).Round(time.Millisecond))
}
