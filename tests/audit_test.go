package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/app"
	"github.com/papayd/papayd/internal/service"
)

// auditCall is a call the audit trail must show.
type auditCall struct {
	method, resource string
	key              apiKey // the caller; zero: none
	peers            *localAddrs
	outcome          string // "OK", or what a refusal's outcome contains
}

// auditEntries pages through the audit trail with the admin key over gRPC
// and over REST.
func auditEntries(t *testing.T, p *papayd, conn *grpc.ClientConn, admin apiKey) (overGRPC, overREST []*papayv1.AuditEntry) {
	t.Helper()
	client := papayv1.NewAuditServiceClient(conn)
	for token := ""; ; {
		r, err := client.ListAuditEntries(admin.ctx(), &papayv1.ListAuditEntriesRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatalf("ListAuditEntries: %v", err)
		}
		overGRPC = append(overGRPC, r.GetEntries()...)
		if token = r.GetNextPageToken(); token == "" {
			break
		}
	}
	for token := ""; ; {
		st, raw := p.rest(admin, http.MethodGet, "/v1/audit-entries?"+url.Values{"page_size": {"100"}, "page_token": {token}}.Encode(), nil)
		if st != http.StatusOK {
			t.Fatalf("GET /v1/audit-entries: HTTP %d %s", st, raw)
		}
		var r papayv1.ListAuditEntriesResponse
		if err := protojson.Unmarshal(raw, &r); err != nil {
			t.Fatalf("GET /v1/audit-entries: %s: %v", raw, err)
		}
		overREST = append(overREST, r.GetEntries()...)
		if token = r.GetNextPageToken(); token == "" {
			break
		}
	}
	return overGRPC, overREST
}

// TestAuditHoldsEveryCall: every mutating call, over gRPC and REST, and
// every key created or revoked has exactly its audit entry (key id and
// name, peer, method, resource, OK); refused calls (no key, a key without
// the scope, invalid input) have theirs, naming the reason.
func TestAuditHoldsEveryCall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writer := createKey(t, dir, service.KeyInput{Name: "billing", Scopes: []service.Scope{service.ScopeAgreementsRead,
		service.ScopeAgreementsWrite, service.ScopeChargesRead, service.ScopeChargesWrite}})
	reader := createKey(t, dir, service.KeyInput{Name: "support-desk", Scopes: []service.Scope{service.ScopeAgreementsRead}})
	admin := createKey(t, dir, service.KeyInput{Name: "operator", Scopes: []service.Scope{service.ScopeAdmin}})
	p := startWith(t, dir, map[string]string{"PAPAYD_AUTH": "keys", "PAPAYD_KEY_RATE": "10000"})
	conn, grpcPeers, hc, httpPeers := tracedClients(t, p)
	agreements, charges := papayv1.NewAgreementServiceClient(conn), papayv1.NewChargeServiceClient(conn)
	local := &localAddrs{addrs: map[string]bool{"local": true}}
	cli := apiKey{name: "papayd keys (command line)"}
	var want []auditCall
	for _, k := range []apiKey{writer, reader, admin} {
		want = append(want, auditCall{"CreateKey", "keys/" + k.id, cli, local, service.AuditOK})
	}
	signedCode := func(code string) string {
		t.Helper()
		var a *papayv1.Agreement
		eventually(t, code+" SIGNED", func() bool {
			r, err := agreements.GetAgreement(writer.ctx(), &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID})
			a = r.GetAgreement()
			return err == nil && a.GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED
		})
		return a.GetContractId()
	}

	// Over gRPC.
	ok := func(method, resource string, peers *localAddrs) {
		want = append(want, auditCall{method, resource, writer, peers, service.AuditOK})
	}
	pre, err := agreements.CreatePresignSession(writer.ctx(), &papayv1.CreatePresignSessionRequest{
		PlanId: planID, OutContractCode: "AUD-G-1", Openid: "oAuditG", UserDisplayName: "Chan Tai Man"})
	if err != nil {
		t.Fatal(err)
	}
	ok("CreatePresignSession", "agreements/AUD-G-1", grpcPeers)
	p.userSigns(pre.GetSessionId(), nil)
	contract := signedCode("AUD-G-1")
	if _, err := charges.CreateCharge(writer.ctx(), chargeReq("AUD-G-PAID", contract, 1000)); err != nil {
		t.Fatal(err)
	}
	ok("CreateCharge", "charges/AUD-G-PAID", grpcPeers)
	p.configurePayer("oAuditG", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 600000})
	if _, err := charges.CreateCharge(writer.ctx(), chargeReq("AUD-G-SHUT", contract, 500)); err != nil {
		t.Fatal(err)
	}
	ok("CreateCharge", "charges/AUD-G-SHUT", grpcPeers)
	if _, err := charges.CloseCharge(writer.ctx(), &papayv1.CloseChargeRequest{OutTradeNo: "AUD-G-SHUT"}); err != nil {
		t.Fatal(err)
	}
	ok("CloseCharge", "charges/AUD-G-SHUT", grpcPeers)
	if _, err := agreements.TerminateAgreement(writer.ctx(), &papayv1.TerminateAgreementRequest{ContractId: contract, TerminationNote: "moved"}); err != nil {
		t.Fatal(err)
	}
	ok("TerminateAgreement", "agreements/AUD-G-1", grpcPeers)

	// Over REST.
	post := func(path string, body proto.Message, out proto.Message) {
		t.Helper()
		raw, err := protojson.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		st, answer := p.restWith(hc, writer, http.MethodPost, path, raw)
		if st != http.StatusOK {
			t.Fatalf("POST %s: HTTP %d %s", path, st, answer)
		}
		if out != nil {
			if err := protojson.Unmarshal(answer, out); err != nil {
				t.Fatalf("POST %s: %s: %v", path, answer, err)
			}
		}
	}
	var rpre papayv1.CreatePresignSessionResponse
	post("/v1/agreements:presign", &papayv1.CreatePresignSessionRequest{PlanId: planID, OutContractCode: "AUD-R-1",
		Openid: "oAuditR", UserDisplayName: "Chan Tai Man"}, &rpre)
	ok("CreatePresignSession", "agreements/AUD-R-1", httpPeers)
	p.userSigns(rpre.GetSessionId(), nil)
	contract = signedCode("AUD-R-1")
	post("/v1/charges", chargeReq("AUD-R-PAID", contract, 1000), nil)
	ok("CreateCharge", "charges/AUD-R-PAID", httpPeers)
	p.configurePayer("oAuditR", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 600000})
	post("/v1/charges", chargeReq("AUD-R-SHUT", contract, 500), nil)
	ok("CreateCharge", "charges/AUD-R-SHUT", httpPeers)
	post("/v1/charges/AUD-R-SHUT:close", &papayv1.CloseChargeRequest{OutTradeNo: "AUD-R-SHUT"}, nil)
	ok("CloseCharge", "charges/AUD-R-SHUT", httpPeers)
	post("/v1/agreements/"+contract+":terminate", &papayv1.TerminateAgreementRequest{ContractId: contract, TerminationNote: "moved"}, nil)
	ok("TerminateAgreement", "agreements/AUD-R-1", httpPeers)

	// Keys, by the operator's command line while papayd runs.
	temp := createKey(t, dir, service.KeyInput{Name: "temporary", Scopes: []service.Scope{service.ScopeChargesRead}})
	if err := app.RevokeKey(context.Background(), app.Config{DataDir: dir}, temp.id, io.Discard); err != nil {
		t.Fatal(err)
	}
	want = append(want, auditCall{"CreateKey", "keys/" + temp.id, cli, local, service.AuditOK},
		auditCall{"RevokeKey", "keys/" + temp.id, cli, local, service.AuditOK})

	// Refused: no key, a key without the scope, invalid input.
	if _, err := charges.CreateCharge(context.Background(), chargeReq("AUD-NOKEY", contract, 100)); err == nil {
		t.Fatal("CreateCharge without a key succeeded")
	}
	want = append(want, auditCall{"CreateCharge", "", apiKey{}, grpcPeers, "(missing)"})
	if st, _ := p.restWith(hc, apiKey{}, http.MethodPost, "/v1/charges", mustJSON(t, map[string]string{"out_trade_no": "AUD-NOKEY"})); st != http.StatusUnauthorized {
		t.Fatalf("POST /v1/charges without a key: HTTP %d", st)
	}
	want = append(want, auditCall{"CreateCharge", "", apiKey{}, httpPeers, "(missing)"})
	if _, err := agreements.TerminateAgreement(reader.ctx(), &papayv1.TerminateAgreementRequest{ContractId: contract}); err == nil {
		t.Fatal("TerminateAgreement with a read-only key succeeded")
	}
	want = append(want, auditCall{"TerminateAgreement", "", reader, grpcPeers, "(scope)"})
	if st, _ := p.restWith(hc, reader, http.MethodPost, "/v1/agreements:presign", []byte(`{"plan_id": 4001, "openid": "oX"}`)); st != http.StatusForbidden {
		t.Fatalf("presign with a read-only key: HTTP %d", st)
	}
	want = append(want, auditCall{"CreatePresignSession", "", reader, httpPeers, "(scope)"})
	_, err = charges.CreateCharge(writer.ctx(), chargeReq("AUD-ZERO", contract, 0))
	_, reason, _ := statusDetails(err)
	if err == nil || reason == "" {
		t.Fatalf("CreateCharge of 0: %v, want a refusal with a reason", err)
	}
	want = append(want, auditCall{"CreateCharge", "", writer, grpcPeers, reason})
	if st, raw := p.restWith(hc, writer, http.MethodPost, "/v1/charges", mustJSON(t, map[string]any{"out_trade_no": "AUD-ZERO",
		"contract_id": contract, "amount": map[string]any{"total": -1, "currency": "HKD"}})); st != http.StatusBadRequest {
		t.Fatalf("POST /v1/charges of -1: HTTP %d %s", st, raw)
	}
	want = append(want, auditCall{"CreateCharge", "", writer, httpPeers, reason})

	// Refusals are recorded asynchronously: wait for the last one.
	var entries, overREST []*papayv1.AuditEntry
	refusals := func(es []*papayv1.AuditEntry) (n int) {
		for _, e := range es {
			if e.GetOutcome() != service.AuditOK {
				n++
			}
		}
		return n
	}
	eventually(t, "the audit entries of the refused calls", func() bool {
		entries, overREST = auditEntries(t, p, conn, admin)
		return refusals(entries) >= 6 && refusals(overREST) >= 6
	})
	if diff := cmp.Diff(entries, overREST, protocmp.Transform()); diff != "" {
		t.Errorf("the audit trail over gRPC and REST differ (-gRPC +REST):\n%s", diff)
	}

	used := map[int]bool{}
	for _, w := range want {
		var found []int
		for i, e := range entries {
			if e.GetMethod() != w.method || e.GetResource() != w.resource || e.GetKeyId() != w.key.id {
				continue
			}
			if (w.outcome == service.AuditOK) != (e.GetOutcome() == service.AuditOK) || !strings.Contains(e.GetOutcome(), w.outcome) {
				continue
			}
			if !w.peers.has(e.GetPeer()) || used[i] {
				continue
			}
			found = append(found, i)
		}
		desc := fmt.Sprintf("%s %s by %q (%s), outcome %q", w.method, w.resource, w.key.name, w.key.id, w.outcome)
		if len(found) != 1 {
			t.Errorf("%s: %d entries, want 1", desc, len(found))
			continue
		}
		e := entries[found[0]]
		used[found[0]] = true
		if e.GetKeyName() != w.key.name || e.GetTime() == nil {
			t.Errorf("%s: entry %v, want key name %q and a time", desc, e, w.key.name)
		}
	}
	// Nothing else was done by the keys or the command line: no entry
	// twice, none for a read.
	for i, e := range entries {
		if used[i] || e.GetKeyName() == "papayd reconciler" {
			continue
		}
		if slices.Contains([]string{writer.id, reader.id, admin.id, ""}, e.GetKeyId()) {
			t.Errorf("unexpected audit entry %v", e)
		}
	}
}
