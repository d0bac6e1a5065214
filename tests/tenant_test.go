package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// tenant is one sub-merchant's records (or, for Z, identifiers no record
// has).
type tenant struct {
	sub, openid              string
	code, termCode           string // a SIGNED and a TERMINATED agreement's out_contract_code
	contract, termContract   string
	trade, txn, closed, news string // a SUCCEEDED charge, its transaction, a CLOSED charge, an unused out_trade_no
	refund, refundID         string // a SUCCEEDED refund of trade, and WeChat's id of it
	newRefund                string // an unused out_refund_no
	event                    string // the id of one of its events
	endpoint                 string // the id of its webhook endpoint
}

// ids are the tenant's identifiers, by role.
func (x tenant) ids() map[string]string {
	return map[string]string{"sub": x.sub, "openid": x.openid, "code": x.code, "termCode": x.termCode,
		"contract": x.contract, "termContract": x.termContract, "trade": x.trade, "txn": x.txn, "closed": x.closed, "new": x.news, "event": x.event,
		"endpoint": x.endpoint, "refund": x.refund, "refundID": x.refundID, "newRefund": x.newRefund}
}

// The sandbox simulator acts for one sub-merchant, the one of its
// credentials (sandbox.json in the data directory). Tenant B's records are
// made with the simulator acting for B; papayd is then restarted on the
// same data directory with the simulator acting for A. B's records stay in
// papayd's database; the simulator forgets them (no call of A may reach
// WeChat about them anyway, and none of B's records is due for the
// reconciler before the test ends).
const (
	subMchA = "1900000301"
	subMchB = "1900000302"
)

// setSandboxSubMchID makes the simulator of dataDir act for subMchID,
// creating its credentials if needed.
func setSandboxSubMchID(t *testing.T, dataDir, subMchID string) {
	t.Helper()
	dir := filepath.Join(dataDir, "sandbox")
	c, err := sandbox.LoadOrCreateCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.SubMchID = subMchID
	if err := c.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
}

// signedWith presigns code for openid with k's key and signs it as the user.
func signedWith(t *testing.T, p *papayd, k apiKey, code, openid string) *papayv1.Agreement {
	t.Helper()
	resp, err := p.agreements.CreatePresignSession(k.ctx(), &papayv1.CreatePresignSessionRequest{
		PlanId: planID, OutContractCode: code, Openid: openid, UserDisplayName: "Chan Tai Man"})
	if err != nil {
		t.Fatalf("presign %s: %v", code, err)
	}
	p.userSigns(resp.GetSessionId(), nil)
	var a *papayv1.Agreement
	eventually(t, code+" SIGNED", func() bool {
		r, err := p.agreements.GetAgreement(k.ctx(), &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID})
		a = r.GetAgreement()
		return err == nil && a.GetState() == papayv1.AgreementState_AGREEMENT_STATE_SIGNED
	})
	return a
}

// refundReq is a refund of amount HKD of the charge outTradeNo.
func refundReq(no, outTradeNo string, amount int64) *papayv1.CreateRefundRequest {
	return &papayv1.CreateRefundRequest{OutRefundNo: no, OutTradeNo: outTradeNo,
		Amount: &papayv1.RefundAmount{Refund: amount, Currency: "HKD"}, Reason: "returned"}
}

// tenantRecords makes x's records with k: a SIGNED agreement with a
// SUCCEEDED charge, refunded in part (the refund SUCCEEDED), and a CLOSED
// charge, and a TERMINATED agreement.
func tenantRecords(t *testing.T, p *papayd, k apiKey, x tenant) tenant {
	t.Helper()
	ctx := k.ctx()
	a := signedWith(t, p, k, x.code, x.openid)
	x.contract = a.GetContractId()
	c, err := p.charges.CreateCharge(ctx, chargeReq(x.trade, x.contract, 1000))
	if err != nil || c.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_SUCCEEDED {
		t.Fatalf("charge %s: %v %v", x.trade, c, err)
	}
	x.txn = c.GetCharge().GetTransactionId()
	refunds := papayv1.NewRefundServiceClient(p.conn)
	if _, err := refunds.CreateRefund(ctx, refundReq(x.refund, x.trade, 100)); err != nil {
		t.Fatalf("refund %s: %v", x.refund, err)
	}
	eventually(t, x.refund+" SUCCEEDED", func() bool {
		r, err := refunds.GetRefund(ctx, &papayv1.GetRefundRequest{OutRefundNo: x.refund, Refresh: true})
		x.refundID = r.GetRefund().GetRefundId()
		return err == nil && r.GetRefund().GetState() == papayv1.RefundState_REFUND_STATE_SUCCEEDED && x.refundID != ""
	})
	p.configurePayer(x.openid, map[string]any{"behavior": "USERPAYING", "settle_after_ms": 600000})
	if _, err := p.charges.CreateCharge(ctx, chargeReq(x.closed, x.contract, 500)); err != nil {
		t.Fatalf("charge %s: %v", x.closed, err)
	}
	if r, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: x.closed}); err != nil ||
		r.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_CLOSED {
		t.Fatalf("close %s: %v %v", x.closed, r, err)
	}
	term := signedWith(t, p, k, x.termCode, x.openid+"-2")
	x.termContract = term.GetContractId()
	if _, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: x.termContract, TerminationNote: "moved"}); err != nil {
		t.Fatalf("terminate %s: %v", x.termCode, err)
	}
	return x
}

// How a caller of A is answered about B's records.
const (
	tenantMissing = iota // as the same call on Z's identifiers (no such record)
	tenantReused         // as the same call on A's own identifiers
	tenantDenied         // PERMISSION_DENIED
	tenantNothing        // success, answering none of B's records
)

// tenantProbe is one call of A about B's records (x is B, or the tenant it
// is compared with).
type tenantProbe struct {
	name   string
	answer int
	req    func(x, a tenant) proto.Message
	// path is the REST facade's path of the call (api/papay/v1/papay_http.yaml);
	// a POST sends req as its body. nil for a server stream (gRPC only),
	// which is read for a second.
	path func(x, a tenant) (method, path string)
}

// tenantAnswer is how papayd answered a call, over one transport.
type tenantAnswer struct {
	Code    string // gRPC code, or HTTP status
	Reason  string
	Message string
	Body    string // a success's answer (JSON)
}

// tenantProbes is the table of calls, by full method name: every method
// papayd serves must have an entry (TestCrossTenant fails otherwise).
func tenantProbes() map[string][]tenantProbe {
	getPath := func(f func(x tenant) string) func(x, a tenant) (string, string) {
		return func(x, _ tenant) (string, string) { return http.MethodGet, f(x) }
	}
	postPath := func(f func(x tenant) string) func(x, a tenant) (string, string) {
		return func(x, _ tenant) (string, string) { return http.MethodPost, f(x) }
	}
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	plan := fmt.Sprint(planID)
	return map[string][]tenantProbe{
		papayv1.AgreementService_GetAgreement_FullMethodName: {
			{"by contract_id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetAgreementRequest{ContractId: x.contract}
			}, getPath(func(x tenant) string { return "/v1/agreements/" + x.contract })},
			{"terminated, by contract_id, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetAgreementRequest{ContractId: x.termContract, Refresh: true}
			}, getPath(func(x tenant) string { return "/v1/agreements/" + x.termContract + q("refresh", "true") })},
			{"by out_contract_code", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetAgreementRequest{OutContractCode: x.code, PlanId: planID}
			}, getPath(func(x tenant) string { return "/v1/agreements/out-contract-code/" + x.code + q("plan_id", plan) })},
			{"by out_contract_code, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetAgreementRequest{OutContractCode: x.code, PlanId: planID, Refresh: true}
			}, getPath(func(x tenant) string {
				return "/v1/agreements/out-contract-code/" + x.code + q("plan_id", plan, "refresh", "true")
			})},
		},
		papayv1.AgreementService_ListAgreements_FullMethodName: {
			{"sub_mchid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListAgreementsRequest{SubMchid: x.sub}
			}, getPath(func(x tenant) string { return "/v1/agreements" + q("sub_mchid", x.sub) })},
			{"openid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListAgreementsRequest{Openid: x.openid, PlanId: planID}
			}, getPath(func(x tenant) string { return "/v1/agreements" + q("openid", x.openid, "plan_id", plan) })},
			{"no filter", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.ListAgreementsRequest{}
			}, getPath(func(tenant) string { return "/v1/agreements" })},
		},
		papayv1.AgreementService_CreatePresignSession_FullMethodName: {
			{"naming the sub-merchant", tenantDenied, func(x, _ tenant) proto.Message {
				return &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oNew", OutContractCode: "NEW-" + x.code, SubMchid: x.sub}
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/agreements:presign" }},
			{"the signed out_contract_code again", tenantReused, func(x, _ tenant) proto.Message {
				return &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oSomeoneElse", OutContractCode: x.code}
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/agreements:presign" }},
		},
		papayv1.AgreementService_TerminateAgreement_FullMethodName: {
			{"signed", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.TerminateAgreementRequest{ContractId: x.contract, TerminationNote: "not yours"}
			}, postPath(func(x tenant) string { return "/v1/agreements/" + x.contract + ":terminate" })},
			{"terminated", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.TerminateAgreementRequest{ContractId: x.termContract, TerminationNote: "not yours"}
			}, postPath(func(x tenant) string { return "/v1/agreements/" + x.termContract + ":terminate" })},
		},
		papayv1.ChargeService_GetCharge_FullMethodName: {
			{"by out_trade_no", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetChargeRequest{OutTradeNo: x.trade}
			}, getPath(func(x tenant) string { return "/v1/charges/" + x.trade })},
			{"closed, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetChargeRequest{OutTradeNo: x.closed, Refresh: true}
			}, getPath(func(x tenant) string { return "/v1/charges/" + x.closed + q("refresh", "true") })},
			{"by transaction_id, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetChargeRequest{TransactionId: x.txn, Refresh: true}
			}, getPath(func(x tenant) string { return "/v1/charges/transaction-id/" + x.txn + q("refresh", "true") })},
		},
		papayv1.ChargeService_ListCharges_FullMethodName: {
			{"sub_mchid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListChargesRequest{SubMchid: x.sub}
			}, getPath(func(x tenant) string { return "/v1/charges" + q("sub_mchid", x.sub) })},
			{"contract filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListChargesRequest{ContractId: x.contract}
			}, getPath(func(x tenant) string { return "/v1/charges" + q("contract_id", x.contract) })},
			{"out_contract_code filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListChargesRequest{OutContractCode: x.code}
			}, getPath(func(x tenant) string { return "/v1/charges" + q("out_contract_code", x.code) })},
			{"openid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListChargesRequest{Openid: x.openid}
			}, getPath(func(x tenant) string { return "/v1/charges" + q("openid", x.openid) })},
			{"no filter", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.ListChargesRequest{}
			}, getPath(func(tenant) string { return "/v1/charges" })},
		},
		papayv1.ChargeService_CreateCharge_FullMethodName: {
			{"on the contract", tenantMissing, func(x, _ tenant) proto.Message {
				return chargeReq(x.news, x.contract, 100)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/charges" }},
			{"replay on the contract", tenantMissing, func(x, _ tenant) proto.Message {
				return chargeReq(x.trade, x.contract, 1000)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/charges" }},
			{"the out_trade_no on the caller's contract", tenantReused, func(x, a tenant) proto.Message {
				return chargeReq(x.trade, a.contract, 999)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/charges" }},
		},
		papayv1.ChargeService_CloseCharge_FullMethodName: {
			{"succeeded", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.CloseChargeRequest{OutTradeNo: x.trade}
			}, postPath(func(x tenant) string { return "/v1/charges/" + x.trade + ":close" })},
			{"closed", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.CloseChargeRequest{OutTradeNo: x.closed}
			}, postPath(func(x tenant) string { return "/v1/charges/" + x.closed + ":close" })},
		},
		papayv1.RefundService_GetRefund_FullMethodName: {
			{"by out_refund_no", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetRefundRequest{OutRefundNo: x.refund}
			}, getPath(func(x tenant) string { return "/v1/refunds/" + x.refund })},
			{"by out_refund_no, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetRefundRequest{OutRefundNo: x.refund, Refresh: true}
			}, getPath(func(x tenant) string { return "/v1/refunds/" + x.refund + q("refresh", "true") })},
			{"by refund_id, refresh", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetRefundRequest{RefundId: x.refundID, Refresh: true}
			}, getPath(func(x tenant) string { return "/v1/refunds/refund-id/" + x.refundID + q("refresh", "true") })},
		},
		papayv1.RefundService_ListRefunds_FullMethodName: {
			{"sub_mchid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListRefundsRequest{SubMchid: x.sub}
			}, getPath(func(x tenant) string { return "/v1/refunds" + q("sub_mchid", x.sub) })},
			{"out_trade_no filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListRefundsRequest{OutTradeNo: x.trade}
			}, getPath(func(x tenant) string { return "/v1/refunds" + q("out_trade_no", x.trade) })},
			{"no filter", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.ListRefundsRequest{}
			}, getPath(func(tenant) string { return "/v1/refunds" })},
		},
		papayv1.RefundService_CreateRefund_FullMethodName: {
			{"of the charge", tenantMissing, func(x, _ tenant) proto.Message {
				return refundReq(x.newRefund, x.trade, 50)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/refunds" }},
			{"of the charge, by transaction_id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.CreateRefundRequest{OutRefundNo: x.newRefund, TransactionId: x.txn,
					Amount: &papayv1.RefundAmount{Refund: 50, Currency: "HKD"}, Reason: "returned"}
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/refunds" }},
			{"replay of the refund", tenantMissing, func(x, _ tenant) proto.Message {
				return refundReq(x.refund, x.trade, 100)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/refunds" }},
			{"the out_refund_no on the caller's charge", tenantReused, func(x, a tenant) proto.Message {
				return refundReq(x.refund, a.trade, 60)
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/refunds" }},
		},
		papayv1.EventService_ListEvents_FullMethodName: {
			{"sub_mchid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.ListEventsRequest{SubMchid: x.sub}
			}, getPath(func(x tenant) string { return "/v1/events" + q("sub_mchid", x.sub) })},
			{"no filter", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.ListEventsRequest{}
			}, getPath(func(tenant) string { return "/v1/events" })},
		},
		papayv1.EventService_GetEvent_FullMethodName: {
			{"by id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetEventRequest{Id: x.event}
			}, getPath(func(x tenant) string { return "/v1/events/" + x.event })},
		},
		papayv1.EventService_StreamEvents_FullMethodName: {
			{"sub_mchid filter", tenantNothing, func(x, _ tenant) proto.Message {
				return &papayv1.StreamEventsRequest{SubMchid: x.sub}
			}, nil},
			{"no filter", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.StreamEventsRequest{}
			}, nil},
		},
		papayv1.WebhookService_CreateWebhookEndpoint_FullMethodName: {
			{"naming the sub-merchant", tenantDenied, func(x, _ tenant) proto.Message {
				return &papayv1.CreateWebhookEndpointRequest{Url: "http://127.0.0.1:1/hook", SubMchid: x.sub}
			}, func(tenant, tenant) (string, string) { return http.MethodPost, "/v1/webhook-endpoints" }},
		},
		papayv1.WebhookService_ListWebhookEndpoints_FullMethodName: {
			{"all", tenantNothing, func(tenant, tenant) proto.Message {
				return &papayv1.ListWebhookEndpointsRequest{}
			}, getPath(func(tenant) string { return "/v1/webhook-endpoints" })},
		},
		papayv1.WebhookService_GetWebhookEndpoint_FullMethodName: {
			{"by id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.GetWebhookEndpointRequest{Id: x.endpoint}
			}, getPath(func(x tenant) string { return "/v1/webhook-endpoints/" + x.endpoint })},
		},
		papayv1.WebhookService_EnableWebhookEndpoint_FullMethodName: {
			{"by id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.EnableWebhookEndpointRequest{Id: x.endpoint}
			}, postPath(func(x tenant) string { return "/v1/webhook-endpoints/" + x.endpoint + ":enable" })},
		},
		papayv1.WebhookService_DeleteWebhookEndpoint_FullMethodName: {
			{"by id", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.DeleteWebhookEndpointRequest{Id: x.endpoint}
			}, func(x, _ tenant) (string, string) { return http.MethodDelete, "/v1/webhook-endpoints/" + x.endpoint }},
		},
		papayv1.WebhookService_ListWebhookDeliveries_FullMethodName: {
			{"of the endpoint", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.ListWebhookDeliveriesRequest{EndpointId: x.endpoint}
			}, getPath(func(x tenant) string { return "/v1/webhook-endpoints/" + x.endpoint + "/deliveries" })},
			{"failed ones", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.ListWebhookDeliveriesRequest{EndpointId: x.endpoint, State: "FAILED"}
			}, getPath(func(x tenant) string {
				return "/v1/webhook-endpoints/" + x.endpoint + "/deliveries" + q("state", "FAILED")
			})},
		},
		papayv1.WebhookService_RedeliverEvent_FullMethodName: {
			{"an event", tenantMissing, func(x, _ tenant) proto.Message {
				return &papayv1.RedeliverEventRequest{Id: x.event}
			}, postPath(func(x tenant) string { return "/v1/events/" + x.event + ":redeliver" })},
		},
		papayv1.AuditService_ListAuditEntries_FullMethodName: {
			{"everything", tenantDenied, func(tenant, tenant) proto.Message {
				return &papayv1.ListAuditEntriesRequest{}
			}, getPath(func(tenant) string { return "/v1/audit-entries" })},
			{"the agreement's", tenantDenied, func(x, _ tenant) proto.Message {
				return &papayv1.ListAuditEntriesRequest{Resource: "agreements/" + x.code}
			}, getPath(func(x tenant) string { return "/v1/audit-entries" + q("resource", "agreements/"+x.code) })},
		},
	}
}

// TestCrossTenant: a key limited to sub-merchant A sees and touches
// nothing of sub-merchant B's, over gRPC and REST, for every method papayd
// serves: B's records read as missing ones, lists leave them out, a write
// naming B is PERMISSION_DENIED, a write on B's records is answered as one
// on a missing record, the audit trail is refused. B's records are
// unchanged and no call reaches WeChat; A's own calls work.
func TestCrossTenant(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	all := []service.Scope{service.ScopeAgreementsRead, service.ScopeAgreementsWrite, service.ScopeChargesRead, service.ScopeChargesWrite,
		service.ScopeRefundsRead, service.ScopeRefundsWrite, service.ScopeEventsRead, service.ScopeWebhooksWrite}
	keyA := createKey(t, dir, service.KeyInput{Name: "tenant-a", Scopes: all, SubMchIDs: []string{subMchA}})
	keyB := createKey(t, dir, service.KeyInput{Name: "tenant-b", Scopes: all, SubMchIDs: []string{subMchB}})
	admin := createKey(t, dir, service.KeyInput{Name: "operator", Scopes: []service.Scope{service.ScopeAdmin}})
	// The reconciler stays idle: every WeChat call during the probes would
	// be one of A's calls about B.
	settings := map[string]string{"PAPAYD_AUTH": "keys", "PAPAYD_KEY_RATE": "10000",
		"PAPAYD_RECONCILE_FIRST_CHECK": "1h", "PAPAYD_RECONCILE_INTERVAL": "1h"}

	// B's records, with the simulator acting for B.
	setSandboxSubMchID(t, dir, subMchB)
	p := startWith(t, dir, settings)
	// B's webhook endpoint (nothing listens there), made first, so that B's
	// events have deliveries to it.
	ep, err := papayv1.NewWebhookServiceClient(p.conn).CreateWebhookEndpoint(keyB.ctx(),
		&papayv1.CreateWebhookEndpointRequest{Url: "http://127.0.0.1:1/hook"})
	if err != nil {
		t.Fatalf("B's CreateWebhookEndpoint: %v", err)
	}
	b := tenantRecords(t, p, keyB, tenant{sub: subMchB, openid: "oTenantB", code: "CODE-B-1", termCode: "CODE-B-2",
		trade: "TRADE-B-PAID", closed: "TRADE-B-SHUT", news: "TRADE-B-NEWX", refund: "REFUND-B-DONE", newRefund: "REFUND-B-NEWX",
		endpoint: ep.GetEndpoint().GetId()})
	p.stop()

	// A's, with the simulator acting for A.
	setSandboxSubMchID(t, dir, subMchA)
	p = startWith(t, dir, settings)
	a := tenantRecords(t, p, keyA, tenant{sub: subMchA, openid: "oTenantA", code: "CODE-A-1", termCode: "CODE-A-2",
		trade: "TRADE-A-PAID", closed: "TRADE-A-SHUT", news: "TRADE-A-NEWX", refund: "REFUND-A-DONE", newRefund: "REFUND-A-NEWX"})
	for _, x := range []*tenant{&a, &b} {
		r, err := papayv1.NewEventServiceClient(p.conn).ListEvents(admin.ctx(), &papayv1.ListEventsRequest{SubMchid: x.sub, PageSize: 1})
		if err != nil || len(r.GetEvents()) != 1 {
			t.Fatalf("admin ListEvents of %s: %v %v", x.sub, r, err)
		}
		x.event = r.GetEvents()[0].GetId()
	}
	z := tenant{event: "evt_" + strings.Repeat("Z", len(b.event)-4), endpoint: "we_" + strings.Repeat("Z", len(b.endpoint)-3), sub: "1900000399", openid: "oTenantZ", code: "CODE-Z-1", termCode: "CODE-Z-2",
		contract: b.contract[:len(b.contract)-6] + "999999", termContract: b.termContract[:len(b.termContract)-6] + "999998",
		trade: "TRADE-Z-PAID", txn: b.txn[:len(b.txn)-6] + "999999", closed: "TRADE-Z-SHUT", news: "TRADE-Z-NEWX",
		refund: "REFUND-Z-DONE", refundID: b.refundID[:len(b.refundID)-6] + "999999", newRefund: "REFUND-Z-NEWX"}

	// Every method papayd serves has its cases.
	methods := apiMethods(t, p)
	probes := tenantProbes()
	for m := range methods {
		if len(probes[m]) == 0 {
			t.Errorf("%s has no case in tenantProbes: add how a caller of A is answered about B's records", m)
		}
	}
	for m := range probes {
		if methods[m] == nil {
			t.Errorf("tenantProbes lists %s, which papayd does not serve", m)
		}
	}

	records := func() []proto.Message {
		t.Helper()
		var out []proto.Message
		for _, id := range []string{b.contract, b.termContract} {
			r, err := p.agreements.GetAgreement(admin.ctx(), &papayv1.GetAgreementRequest{ContractId: id})
			if err != nil {
				t.Fatalf("admin GetAgreement %s: %v", id, err)
			}
			out = append(out, r.GetAgreement())
		}
		for _, no := range []string{b.trade, b.closed} {
			r, err := p.charges.GetCharge(admin.ctx(), &papayv1.GetChargeRequest{OutTradeNo: no})
			if err != nil {
				t.Fatalf("admin GetCharge %s: %v", no, err)
			}
			out = append(out, r.GetCharge())
		}
		r, err := papayv1.NewRefundServiceClient(p.conn).GetRefund(admin.ctx(), &papayv1.GetRefundRequest{OutRefundNo: b.refund})
		if err != nil {
			t.Fatalf("admin GetRefund %s: %v", b.refund, err)
		}
		return append(out, r.GetRefund())
	}
	before := records()
	wechatBefore := len(p.wechatCalls())

	// norm replaces every tenant's identifiers by their role.
	var pairs []string
	for _, x := range []tenant{a, b, z} {
		for role, id := range x.ids() {
			pairs = append(pairs, id, "<"+role+">")
		}
	}
	norm := strings.NewReplacer(pairs...).Replace
	call := func(full string, req func(x, a tenant) proto.Message, path func(x, a tenant) (string, string), x tenant) (grpcAns, restAns tenantAnswer) {
		t.Helper()
		m := methods[full]
		mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		in := req(x, a)
		if path == nil { // a server stream: what it sends in a second
			ctx, cancel := context.WithTimeout(keyA.ctx(), time.Second)
			defer cancel()
			st, err := p.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
			if err == nil {
				err = st.SendMsg(in)
			}
			if err == nil {
				err = st.CloseSend()
			}
			var bodies []string
			for err == nil {
				out := mt.New().Interface()
				if err = st.RecvMsg(out); err == nil {
					bodies = append(bodies, protojson.Format(out))
				}
			}
			if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.OK {
				ans := tenantAnswer{Code: code.String(), Message: status.Convert(err).Message()}
				_, ans.Reason, _ = statusDetails(err)
				return ans, ans
			}
			ans := tenantAnswer{Code: codes.OK.String(), Body: strings.Join(bodies, "\n")}
			return ans, tenantAnswer{Code: "HTTP 200", Body: ans.Body}
		}
		out := mt.New().Interface()
		if err := p.conn.Invoke(keyA.ctx(), full, in, out); err != nil {
			code, reason, _ := statusDetails(err)
			grpcAns = tenantAnswer{Code: code.String(), Reason: reason, Message: status.Convert(err).Message()}
		} else {
			grpcAns = tenantAnswer{Code: codes.OK.String(), Body: protojson.Format(out)}
		}
		method, urlPath := path(x, a)
		var body []byte
		if method == http.MethodPost {
			if body, err = protojson.Marshal(in); err != nil {
				t.Fatal(err)
			}
		}
		st, raw := p.rest(keyA, method, urlPath, body)
		restAns = tenantAnswer{Code: fmt.Sprint("HTTP ", st)}
		if st == http.StatusOK {
			restAns.Body = string(raw)
			if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(raw, mt.New().Interface()); err != nil {
				t.Errorf("%s %s: answer %s is not a %s: %v", method, urlPath, raw, m.Output().FullName(), err)
			}
		} else {
			var e restError
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("%s %s: HTTP %d %q: %v", method, urlPath, st, raw, err)
			}
			restAns.Reason, restAns.Message = e.reason(), e.Message
		}
		return grpcAns, restAns
	}

	type result struct{ grpc, rest tenantAnswer }
	onB := map[string]result{}
	for full, ps := range probes {
		for _, pr := range ps {
			if methods[full] == nil {
				continue
			}
			g, r := call(full, pr.req, pr.path, b)
			onB[full+" "+pr.name] = result{g, r}
		}
	}
	if n := len(p.wechatCalls()) - wechatBefore; n != 0 {
		t.Errorf("A's calls about B's records made %d WeChat calls", n)
	}
	if diff := cmp.Diff(before, records(), protocmp.Transform()); diff != "" {
		t.Errorf("B's records changed (-before +after):\n%s", diff)
	}

	for full, ps := range probes {
		for _, pr := range ps {
			if methods[full] == nil {
				continue
			}
			name := full + " " + pr.name
			got := onB[name]
			for _, g := range []tenantAnswer{got.grpc, got.rest} {
				for _, id := range b.ids() {
					if strings.Contains(g.Body, id) {
						t.Errorf("%s: %s answered B's %s: %s", name, g.Code, id, g.Body)
					}
				}
			}
			switch pr.answer {
			case tenantNothing:
				if got.grpc.Code != "OK" || got.rest.Code != "HTTP 200" {
					t.Errorf("%s: %+v / %+v, want an answer without B's records", name, got.grpc, got.rest)
				}
			case tenantDenied:
				if got.grpc.Code != codes.PermissionDenied.String() || got.rest.Code != "HTTP 403" {
					t.Errorf("%s: %+v / %+v, want PERMISSION_DENIED / 403", name, got.grpc, got.rest)
				}
			case tenantMissing, tenantReused:
				like := z
				if pr.answer == tenantReused {
					like = a
				}
				wg, wr := call(full, pr.req, pr.path, like)
				for _, c := range []struct{ got, want tenantAnswer }{{got.grpc, wg}, {got.rest, wr}} {
					if c.got.Code == "OK" || c.got.Code == "HTTP 200" {
						t.Errorf("%s: %+v, want an error", name, c.got)
						continue
					}
					g := tenantAnswer{c.got.Code, c.got.Reason, norm(c.got.Message), ""}
					w := tenantAnswer{c.want.Code, c.want.Reason, norm(c.want.Message), ""}
					if g != w {
						t.Errorf("%s: answered %+v about B's record, but %+v about %s", name, g, w, map[int]string{tenantMissing: "a missing one", tenantReused: "A's own"}[pr.answer])
					}
				}
				if pr.answer == tenantMissing && strings.HasPrefix(string(methods[full].Name()), "Get") && got.grpc.Code != codes.NotFound.String() {
					t.Errorf("%s: %s, want NOT_FOUND", name, got.grpc.Code)
				}
			}
		}
	}
	if diff := cmp.Diff(before, records(), protocmp.Transform()); diff != "" {
		t.Errorf("B's records changed (-before +after):\n%s", diff)
	}
	tenantOwnCalls(t, p, keyA, a)
}

// tenantOwnCalls: A's key reads, lists and changes A's records, over gRPC
// and REST.
func tenantOwnCalls(t *testing.T, p *papayd, k apiKey, a tenant) {
	t.Helper()
	ctx := k.ctx()
	if r, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{ContractId: a.contract}); err != nil || r.GetAgreement().GetOutContractCode() != a.code {
		t.Errorf("A's GetAgreement of its own: %v %v", r, err)
	}
	if r, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{TransactionId: a.txn}); err != nil || r.GetCharge().GetOutTradeNo() != a.trade {
		t.Errorf("A's GetCharge of its own: %v %v", r, err)
	}
	if r, err := p.agreements.ListAgreements(ctx, &papayv1.ListAgreementsRequest{SubMchid: a.sub}); err != nil || len(r.GetAgreements()) != 2 {
		t.Errorf("A's ListAgreements: %v %v, want its 2", r, err)
	}
	if r, err := p.charges.ListCharges(ctx, &papayv1.ListChargesRequest{}); err != nil || len(r.GetCharges()) != 2 {
		t.Errorf("A's ListCharges: %v %v, want its 2", r, err)
	}
	for _, path := range []string{"/v1/agreements/" + a.contract, "/v1/charges/" + a.trade, "/v1/charges?sub_mchid=" + a.sub} {
		if st, raw := p.rest(k, http.MethodGet, path, nil); st != http.StatusOK || !strings.Contains(string(raw), a.sub) {
			t.Errorf("A's GET %s: HTTP %d %s", path, st, raw)
		}
	}
	body := mustJSON(t, map[string]any{"out_trade_no": a.news, "contract_id": a.contract,
		"amount": map[string]any{"total": 100, "currency": "HKD"}, "description": "FitClub-Central-Monthly"})
	if st, raw := p.rest(k, http.MethodPost, "/v1/charges", body); st != http.StatusOK {
		t.Errorf("A's POST /v1/charges: HTTP %d %s", st, raw)
	}
	if r, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: a.news}); err != nil || r.GetCharge().GetState() != papayv1.ChargeState_CHARGE_STATE_CLOSED {
		t.Errorf("A's CloseCharge of its own: %v %v", r, err)
	}
	refunds := papayv1.NewRefundServiceClient(p.conn)
	if r, err := refunds.GetRefund(ctx, &papayv1.GetRefundRequest{RefundId: a.refundID}); err != nil || r.GetRefund().GetOutRefundNo() != a.refund {
		t.Errorf("A's GetRefund of its own: %v %v", r, err)
	}
	if r, err := refunds.ListRefunds(ctx, &papayv1.ListRefundsRequest{OutTradeNo: a.trade}); err != nil || len(r.GetRefunds()) != 1 {
		t.Errorf("A's ListRefunds: %v %v, want its 1", r, err)
	}
	for _, path := range []string{"/v1/refunds/" + a.refund, "/v1/refunds?sub_mchid=" + a.sub} {
		if st, raw := p.rest(k, http.MethodGet, path, nil); st != http.StatusOK || !strings.Contains(string(raw), a.sub) {
			t.Errorf("A's GET %s: HTTP %d %s", path, st, raw)
		}
	}
	if r, err := p.charges.GetCharge(ctx, &papayv1.GetChargeRequest{OutTradeNo: a.trade}); err != nil || r.GetCharge().GetRefundedTotal() != 100 {
		t.Errorf("A's charge after its refund: %v %v, want refunded_total 100", r, err)
	}
	if r, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: a.contract, TerminationNote: "done"}); err != nil ||
		r.GetAgreement().GetState() != papayv1.AgreementState_AGREEMENT_STATE_TERMINATED {
		t.Errorf("A's TerminateAgreement of its own: %v %v", r, err)
	}
}
