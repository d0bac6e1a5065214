package rpc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/rpc"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/web"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeKeys models the key states: a token is "<id>.<secret>"; an unknown
// id, a wrong secret, an expired or a revoked key is ErrUnauthenticated.
type fakeKeys map[string]struct {
	secret string
	key    service.APIKey
}

func (f fakeKeys) Authenticate(_ context.Context, token string) (service.APIKey, error) {
	id, secret, _ := strings.Cut(token, ".")
	k, ok := f[id]
	if !ok || k.secret != secret || !k.key.Usable(now) {
		return service.APIKey{}, service.ErrUnauthenticated
	}
	return k.key, nil
}

func testKeys() fakeKeys {
	f := fakeKeys{}
	add := func(id string, k service.APIKey) {
		k.ID = id
		f[id] = struct {
			secret string
			key    service.APIKey
		}{"s3cret-" + id, k}
	}
	for _, s := range service.Scopes {
		add(string(s), service.APIKey{Scopes: []service.Scope{s}})
	}
	all := []service.Scope{service.ScopeAgreementsRead, service.ScopeAgreementsWrite, service.ScopeChargesRead, service.ScopeChargesWrite}
	add("expired", service.APIKey{Scopes: all, ExpireTime: now.Add(-time.Second)})
	add("revoked", service.APIKey{Scopes: all, RevokeTime: now.Add(-time.Hour)})
	add("slow", service.APIKey{Scopes: all, RateLimit: 1})
	return f
}

func token(id string) string { return "Bearer " + id + ".s3cret-" + id }

// fakeServices answer every method and note the caller of GetCharge by
// its out_trade_no.
type fakeServices struct {
	papayv1.UnimplementedAgreementServiceServer
	papayv1.UnimplementedChargeServiceServer
	papayv1.UnimplementedRefundServiceServer
	callers sync.Map
}

func (*fakeServices) CreatePresignSession(context.Context, *papayv1.CreatePresignSessionRequest) (*papayv1.CreatePresignSessionResponse, error) {
	return &papayv1.CreatePresignSessionResponse{}, nil
}
func (*fakeServices) GetAgreement(context.Context, *papayv1.GetAgreementRequest) (*papayv1.GetAgreementResponse, error) {
	return &papayv1.GetAgreementResponse{}, nil
}
func (*fakeServices) ListAgreements(context.Context, *papayv1.ListAgreementsRequest) (*papayv1.ListAgreementsResponse, error) {
	return &papayv1.ListAgreementsResponse{}, nil
}
func (*fakeServices) TerminateAgreement(context.Context, *papayv1.TerminateAgreementRequest) (*papayv1.TerminateAgreementResponse, error) {
	return &papayv1.TerminateAgreementResponse{}, nil
}
func (*fakeServices) CreateCharge(context.Context, *papayv1.CreateChargeRequest) (*papayv1.CreateChargeResponse, error) {
	return &papayv1.CreateChargeResponse{}, nil
}
func (f *fakeServices) GetCharge(ctx context.Context, req *papayv1.GetChargeRequest) (*papayv1.GetChargeResponse, error) {
	f.callers.Store(req.GetOutTradeNo(), service.CallerFrom(ctx))
	return &papayv1.GetChargeResponse{}, nil
}
func (*fakeServices) ListCharges(context.Context, *papayv1.ListChargesRequest) (*papayv1.ListChargesResponse, error) {
	return &papayv1.ListChargesResponse{}, nil
}
func (*fakeServices) CloseCharge(context.Context, *papayv1.CloseChargeRequest) (*papayv1.CloseChargeResponse, error) {
	return &papayv1.CloseChargeResponse{}, nil
}
func (*fakeServices) CreateRefund(context.Context, *papayv1.CreateRefundRequest) (*papayv1.CreateRefundResponse, error) {
	return &papayv1.CreateRefundResponse{}, nil
}
func (*fakeServices) GetRefund(context.Context, *papayv1.GetRefundRequest) (*papayv1.GetRefundResponse, error) {
	return &papayv1.GetRefundResponse{}, nil
}
func (*fakeServices) ListRefunds(context.Context, *papayv1.ListRefundsRequest) (*papayv1.ListRefundsResponse, error) {
	return &papayv1.ListRefundsResponse{}, nil
}

// env is a server with auth over gRPC, and its gateway over HTTP.
type env struct {
	fake  *fakeServices
	srv   *grpc.Server
	conn  *grpc.ClientConn
	rest  string
	logs  *syncBuffer
	fails *counts
}

type counts struct {
	sync.Mutex
	n map[string]int
}

func (c *counts) add(r string) { c.Lock(); c.n[r]++; c.Unlock() }
func (c *counts) get(r string) int {
	c.Lock()
	defer c.Unlock()
	return c.n[r]
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newEnv(t *testing.T, keys rpc.Authenticator) *env {
	t.Helper()
	e := &env{fake: &fakeServices{}, logs: &syncBuffer{}, fails: &counts{n: map[string]int{}}}
	log := slog.New(rpc.LogHandler(slog.NewTextHandler(e.logs, nil)))
	auth := rpc.Auth{Keys: keys, DefaultRate: 1e6, Failed: e.fails.add, Now: func() time.Time { return now }}
	srv, _, local := rpc.NewServerWith(e.fake, e.fake, e.fake, papayv1.UnimplementedAuditServiceServer{}, papayv1.UnimplementedEventServiceServer{},
		papayv1.UnimplementedWebhookServiceServer{}, log, rpc.DefaultLimits, auth)
	e.srv = srv
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	if e.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	gw, err := web.NewGateway(context.Background(), local)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(web.RequestIDs(gw))
	t.Cleanup(hs.Close)
	e.rest = hs.URL
	return e
}

// method is one RPC, called over gRPC and over REST.
type method struct {
	full         string
	req, resp    proto.Message
	verb, path   string
	needs        service.Scope
	writesToBody bool
}

var methods = []method{
	{papayv1.AgreementService_CreatePresignSession_FullMethodName, &papayv1.CreatePresignSessionRequest{}, &papayv1.CreatePresignSessionResponse{}, "POST", "/v1/agreements:presign", service.ScopeAgreementsWrite, true},
	{papayv1.AgreementService_GetAgreement_FullMethodName, &papayv1.GetAgreementRequest{}, &papayv1.GetAgreementResponse{}, "GET", "/v1/agreements/c1", service.ScopeAgreementsRead, false},
	{papayv1.AgreementService_ListAgreements_FullMethodName, &papayv1.ListAgreementsRequest{}, &papayv1.ListAgreementsResponse{}, "GET", "/v1/agreements", service.ScopeAgreementsRead, false},
	{papayv1.AgreementService_TerminateAgreement_FullMethodName, &papayv1.TerminateAgreementRequest{}, &papayv1.TerminateAgreementResponse{}, "POST", "/v1/agreements/c1:terminate", service.ScopeAgreementsWrite, true},
	{papayv1.ChargeService_CreateCharge_FullMethodName, &papayv1.CreateChargeRequest{}, &papayv1.CreateChargeResponse{}, "POST", "/v1/charges", service.ScopeChargesWrite, true},
	{papayv1.ChargeService_GetCharge_FullMethodName, &papayv1.GetChargeRequest{}, &papayv1.GetChargeResponse{}, "GET", "/v1/charges/o1", service.ScopeChargesRead, false},
	{papayv1.ChargeService_ListCharges_FullMethodName, &papayv1.ListChargesRequest{}, &papayv1.ListChargesResponse{}, "GET", "/v1/charges", service.ScopeChargesRead, false},
	{papayv1.ChargeService_CloseCharge_FullMethodName, &papayv1.CloseChargeRequest{}, &papayv1.CloseChargeResponse{}, "POST", "/v1/charges/o1:close", service.ScopeChargesWrite, true},
	{papayv1.RefundService_CreateRefund_FullMethodName, &papayv1.CreateRefundRequest{}, &papayv1.CreateRefundResponse{}, "POST", "/v1/refunds", service.ScopeRefundsWrite, true},
	{papayv1.RefundService_GetRefund_FullMethodName, &papayv1.GetRefundRequest{}, &papayv1.GetRefundResponse{}, "GET", "/v1/refunds/r1", service.ScopeRefundsRead, false},
	{papayv1.RefundService_GetRefund_FullMethodName, &papayv1.GetRefundRequest{}, &papayv1.GetRefundResponse{}, "GET", "/v1/refunds/refund-id/x1", service.ScopeRefundsRead, false},
	{papayv1.RefundService_ListRefunds_FullMethodName, &papayv1.ListRefundsRequest{}, &papayv1.ListRefundsResponse{}, "GET", "/v1/refunds", service.ScopeRefundsRead, false},
}

func (e *env) grpcCall(t *testing.T, m method, authz string) *status.Status {
	t.Helper()
	ctx := context.Background()
	if authz != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
	}
	err := e.conn.Invoke(ctx, m.full, m.req, proto.Clone(m.resp))
	return status.Convert(err)
}

// restAnswer is a REST answer: the status, the headers and the error body.
type restAnswer struct {
	code   int
	header http.Header
	body   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retry_delay"`
		} `json:"details"`
	}
}

func (e *env) restCall(t *testing.T, verb, path, authz string) restAnswer {
	t.Helper()
	var body io.Reader
	if verb == "POST" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(verb, e.rest+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := restAnswer{code: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
			t.Fatalf("%s %s: error body: %v", verb, path, err)
		}
	}
	return a
}

// TestAuthMatrix: every method, over gRPC and REST, with every key state
// and every scope.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testKeys())
	refused := map[string]string{
		"absent":    "",
		"malformed": "Basic c3VwZXI6dXNlcg==",
		"empty":     "Bearer ",
		"unknown":   token("nobody"),
		"wrong":     "Bearer " + string(service.ScopeAdmin) + ".guess",
		"expired":   token("expired"),
		"revoked":   token("revoked"),
	}
	for _, m := range methods {
		for state, authz := range refused {
			if st := e.grpcCall(t, m, authz); st.Code() != codes.Unauthenticated {
				t.Errorf("gRPC %s, key %s: %v, want Unauthenticated", m.full, state, st)
			}
			a := e.restCall(t, m.verb, m.path, authz)
			if a.code != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("REST %s %s, key %s: %d WWW-Authenticate %q, want 401 Bearer", m.verb, m.path, state, a.code, a.header.Get("WWW-Authenticate"))
			}
			if len(a.body.Details) == 0 || a.body.Details[0].Reason != "UNAUTHENTICATED" {
				t.Errorf("REST %s %s, key %s: details %+v, want reason UNAUTHENTICATED", m.verb, m.path, state, a.body.Details)
			}
		}
		for _, s := range service.Scopes {
			allowed := s == m.needs || s == service.ScopeAdmin
			st := e.grpcCall(t, m, token(string(s)))
			a := e.restCall(t, m.verb, m.path, token(string(s)))
			switch {
			case allowed && (st.Code() != codes.OK || a.code != http.StatusOK):
				t.Errorf("%s with scope %s: gRPC %v, REST %d; want OK", m.full, s, st, a.code)
			case !allowed && (st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), string(m.needs))):
				t.Errorf("gRPC %s with scope %s: %v; want PermissionDenied naming %s", m.full, s, st, m.needs)
			case !allowed && (a.code != http.StatusForbidden || !strings.Contains(a.body.Message, string(m.needs))):
				t.Errorf("REST %s %s with scope %s: %d %q; want 403 naming %s", m.verb, m.path, s, a.code, a.body.Message, m.needs)
			}
		}
	}
	for _, secret := range []string{"s3cret-", "guess", "c3VwZXI6dXNlcg"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log holds a secret (%q):\n%s", secret, e.logs.String())
		}
	}
}

// TestAuthPublicServices: health checks and reflection need no key.
func TestAuthPublicServices(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testKeys())
	if _, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("gRPC health without a key: %v", err)
	}
	if a := e.restCall(t, "GET", "/v1/health", ""); a.code != http.StatusOK {
		t.Errorf("REST /v1/health without a key: %d", a.code)
	}
	for _, m := range []string{"/grpc.health.v1.Health/Watch", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"} {
		if !rpc.IsPublic(m) {
			t.Errorf("%s needs a key", m)
		}
	}
}

// TestAuthCaller: the handler sees the key's caller, with the peer's
// address (the HTTP client's for REST); without authentication, Anonymous.
func TestAuthCaller(t *testing.T) {
	t.Parallel()
	for _, keys := range []rpc.Authenticator{testKeys(), nil} {
		e := newEnv(t, keys)
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", token(string(service.ScopeChargesRead)))
		if _, err := papayv1.NewChargeServiceClient(e.conn).GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: "grpc"}); err != nil {
			t.Fatal(err)
		}
		if a := e.restCall(t, "GET", "/v1/charges/rest", token(string(service.ScopeChargesRead))); a.code != http.StatusOK {
			t.Fatalf("REST: %d %+v", a.code, a.body)
		}
		for _, via := range []string{"grpc", "rest"} {
			v, _ := e.fake.callers.Load(via)
			c, _ := v.(service.Caller)
			wantID := string(service.ScopeChargesRead)
			if keys == nil {
				wantID = ""
			}
			if c.KeyID != wantID || !strings.HasPrefix(c.Peer, "127.0.0.1:") {
				t.Errorf("auth %v, via %s: caller %+v, want key %q from 127.0.0.1", keys != nil, via, c, wantID)
			}
		}
	}
}

// TestAuthRateLimit: a key beyond its rate gets RESOURCE_EXHAUSTED with a
// RetryInfo (REST: 429 with Retry-After); another key is not held up.
func TestAuthRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testKeys())
	get := methods[5]
	if st := e.grpcCall(t, get, token("slow")); st.Code() != codes.OK {
		t.Fatalf("first call: %v", st)
	}
	st := e.grpcCall(t, get, token("slow"))
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("second call within the second: %v, want ResourceExhausted", st)
	}
	var retry *errdetails.RetryInfo
	var reason string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || retry.GetRetryDelay().AsDuration() > time.Second || reason != "RATE_LIMITED" {
		t.Errorf("details %v: want a RetryInfo of at most 1s and reason RATE_LIMITED", st.Details())
	}
	a := e.restCall(t, "GET", get.path, token("slow"))
	if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" {
		t.Errorf("REST: %d Retry-After %q, want 429 and 1", a.code, a.header.Get("Retry-After"))
	}
	if st := e.grpcCall(t, get, token(string(service.ScopeChargesRead))); st.Code() != codes.OK {
		t.Errorf("another key: %v", st)
	}
	if n := e.fails.get(rpc.AuthLimited); n != 2 {
		t.Errorf("%d rate_limited counted, want 2", n)
	}
}

// TestAuthRefusalsCountedAndSampled: every refusal is counted; the log
// holds one sample per reason per interval, with the request id and the
// key id, and the count of those not logged.
func TestAuthRefusalsCountedAndSampled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testKeys())
	get := methods[5]
	for range 5 {
		e.grpcCall(t, get, token("nobody"))
		e.grpcCall(t, get, token(string(service.ScopeAgreementsRead)))
	}
	if got := e.fails.get(rpc.AuthRejected); got != 5 {
		t.Errorf("rejected counted %d times, want 5", got)
	}
	if got := e.fails.get(rpc.AuthScope); got != 5 {
		t.Errorf("scope counted %d times, want 5", got)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "reason=rejected"); n != 1 {
		t.Errorf("%d log lines for rejected, want 1 (sampled):\n%s", n, logs)
	}
	if !strings.Contains(logs, "key_id="+string(service.ScopeAgreementsRead)) || !strings.Contains(logs, "request_id=") {
		t.Errorf("the scope refusal is not logged with its key id and request id:\n%s", logs)
	}
}

// TestScopeTableCoversEveryMethod walks the registered services: every
// method needs a scope or belongs to a public service, and every scope
// entry is a registered method.
func TestScopeTableCoversEveryMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testKeys())
	registered := map[string]bool{}
	for svc, info := range e.srv.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			registered[full] = true
			if _, ok := rpc.ScopeOf(full); !ok && !rpc.IsPublic(full) {
				t.Errorf("%s has no scope: add it to the table in scopes.go", full)
			}
		}
	}
	for _, m := range methods {
		if !registered[m.full] {
			t.Errorf("%s is not registered", m.full)
		}
		if s, _ := rpc.ScopeOf(m.full); s != m.needs {
			t.Errorf("%s needs %q, want %q", m.full, s, m.needs)
		}
	}
}

// refuseFast refuses every token at once.
type refuseFast struct{}

func (refuseFast) Authenticate(context.Context, string) (service.APIKey, error) {
	return service.APIKey{}, service.ErrUnauthenticated
}

// BenchmarkAuthRefusesRandomToken: the interceptor's cost of refusing a
// random token (an attacker's guess), authenticator excluded.
func BenchmarkAuthRefusesRandomToken(b *testing.B) {
	ic := rpc.AuthUnary(rpc.Auth{Keys: refuseFast{}, Failed: func(string) {}}, slog.New(slog.DiscardHandler))
	ctxs := make([]context.Context, 1024)
	for i := range ctxs {
		ctxs[i] = metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+rand.Text()))
	}
	info := &grpc.UnaryServerInfo{FullMethod: papayv1.ChargeService_GetCharge_FullMethodName}
	handler := func(context.Context, any) (any, error) { b.Fatal("handler called"); return nil, nil }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := ic(ctxs[i%len(ctxs)], nil, info, handler); status.Code(err) != codes.Unauthenticated {
			b.Fatal(err)
		}
		i++
	}
}
