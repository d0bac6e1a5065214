package tests

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// linesWith returns papayd's log lines carrying request_id=id.
func (p *papayd) linesWith(id string) []string {
	var out []string
	for l := range strings.Lines(p.log.String()) {
		if strings.Contains(l, " request_id="+id) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// hasLine reports whether one of lines contains every one of parts.
func hasLine(lines []string, parts ...string) bool {
	for _, l := range lines {
		ok := true
		for _, part := range parts {
			ok = ok && strings.Contains(l, part)
		}
		if ok {
			return true
		}
	}
	return false
}

// send posts body to path on papayd's HTTP port with header x-request-id
// set to id (none when ""), and returns the answer's status and x-request-id.
func (p *papayd) send(method, path, id string, h http.Header, body string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id")
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	long := strings.Repeat("x", 65)

	t.Run("REST", func(t *testing.T) {
		code, got := p.send(http.MethodPost, "/v1/agreements:presign", "rest-caller-id-1", nil,
			`{"plan_id": 4001, "openid": "oReqID-rest", "user_display_name": "Wong"}`)
		if code != http.StatusOK || got != "rest-caller-id-1" {
			t.Fatalf("presign: HTTP %d, x-request-id %q, want 200 and the caller's id", code, got)
		}
		lines := p.linesWith("rest-caller-id-1")
		if !hasLine(lines, `msg="signing session started"`) || !hasLine(lines, "msg=rpc", "CreatePresignSession") {
			t.Errorf("log lines with the caller's id:\n%s", strings.Join(lines, "\n"))
		}
		for _, bad := range []string{"", long, "tab\tin-it"} {
			code, got := p.send(http.MethodGet, "/v1/agreements/out-contract-code/NONE?plan_id=4001", bad, nil, "")
			if code != http.StatusNotFound || got == "" || got == bad || len(got) > 64 {
				t.Errorf("caller id %q: HTTP %d, x-request-id %q, want 404 and a new id", bad, code, got)
			}
			if !hasLine(p.linesWith(got), "msg=rpc", "code=NotFound") {
				t.Errorf("no rpc log line with the generated id %s", got)
			}
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		var header metadata.MD
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "grpc-caller-id-1")
		_, err := p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{
			PlanId: planID, Openid: "oReqID-grpc", UserDisplayName: "Chan",
		}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "grpc-caller-id-1" {
			t.Fatalf("x-request-id header metadata %q, want the caller's id", got)
		}
		lines := p.linesWith("grpc-caller-id-1")
		if !hasLine(lines, `msg="signing session started"`) || !hasLine(lines, "msg=rpc", "CreatePresignSession") {
			t.Errorf("log lines with the caller's id:\n%s", strings.Join(lines, "\n"))
		}
		for _, bad := range []string{"", long} {
			ctx := context.Background()
			if bad != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", bad)
			}
			header = nil
			_, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: "NONE", PlanId: planID}, grpc.Header(&header))
			got := header.Get("x-request-id")
			if err == nil || len(got) != 1 || got[0] == bad || len(got[0]) > 64 {
				t.Errorf("caller id %q: %v, x-request-id %q, want NotFound and a new id", bad, err, got)
				continue
			}
			if !hasLine(p.linesWith(got[0]), "msg=rpc", "code=NotFound") {
				t.Errorf("no rpc log line with the generated id %s", got[0])
			}
		}
	})

	t.Run("callback", func(t *testing.T) {
		h, body, err := p.app.Sandbox().BuildNotification("PAPAY.SIGN", "", []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		h.Set("Wechatpay-Serial", "UNKNOWN")
		code, got := p.send(http.MethodPost, "/wechatpay/notify", "notify-caller-id-1", h, string(body))
		if code != http.StatusUnauthorized || got != "notify-caller-id-1" {
			t.Fatalf("notify: HTTP %d, x-request-id %q, want 401 and the caller's id", code, got)
		}
		if lines := p.linesWith("notify-caller-id-1"); !hasLine(lines, `msg="notification rejected"`) {
			t.Errorf("log lines with the caller's id:\n%s", strings.Join(lines, "\n"))
		}
	})
}

// TestRequestIDNotifyListener: the callback's own listener
// (PAPAYD_NOTIFY_ADDR) echoes and logs request ids too.
func TestRequestIDNotifyListener(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{"PAPAYD_NOTIFY_ADDR": "127.0.0.1:0"})
	h, body, err := p.app.Sandbox().BuildNotification("PAPAY.SIGN", "", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	h.Set("Wechatpay-Serial", "UNKNOWN")
	h.Set("X-Request-Id", "notify-listener-id-1")
	req, err := http.NewRequest(http.MethodPost, "http://"+p.app.NotifyAddr()+"/wechatpay/notify", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); resp.StatusCode != http.StatusUnauthorized || got != "notify-listener-id-1" {
		t.Fatalf("notify listener: HTTP %d, x-request-id %q, want 401 and the caller's id", resp.StatusCode, got)
	}
	if lines := p.linesWith("notify-listener-id-1"); !hasLine(lines, `msg="notification rejected"`) {
		t.Errorf("log lines with the caller's id:\n%s", strings.Join(lines, "\n"))
	}
}
