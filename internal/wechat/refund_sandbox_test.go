package wechat

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// sandboxRig is papayd's Client and NotificationParser against a sandbox, with a
// notification endpoint that parses what arrives.
type sandboxRig struct {
	sb      *sandbox.Sandbox
	creds   *sandbox.Credentials
	client  *Client
	notices chan service.Notification
	notify  string
}

func newSandboxRig(t *testing.T) *sandboxRig {
	t.Helper()
	creds, err := sandbox.NewCredentials()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Options{Credentials: creds, TimeScale: 0.0001})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(sb.APIHandler())
	t.Cleanup(api.Close)
	r := &sandboxRig{sb: sb, creds: creds, notices: make(chan service.Notification, 16)}
	r.client, err = NewClient(Config{BaseURL: api.URL, MchID: creds.MchID, MchCertSerial: creds.MerchantSerial,
		MchPrivateKey: creds.MerchantKey, PlatformCerts: []*x509.Certificate{creds.PlatformCert}, Timeout: 5 * time.Second},
		&fakeRecorder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	parser, err := NewNotificationParser(r.client.Keys(), creds.APIv3Key, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := parser.ParseContext(req.Context(), req.Header, body)
		if err != nil {
			t.Errorf("notification: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.notices <- n
	}))
	t.Cleanup(receiver.Close)
	t.Cleanup(sb.Close)
	r.notify = receiver.URL + "/notify"
	return r
}

func (r *sandboxRig) merchant() service.Merchant {
	return service.Merchant{SubMchID: r.creds.SubMchID, SPAppID: r.creds.SPAppID, SubAppID: r.creds.SubAppID}
}

// paid signs a contract for openID and deducts 100.00 HKD as outTradeNo.
func (r *sandboxRig) paid(t *testing.T, openID, outTradeNo string) service.RemoteTransaction {
	t.Helper()
	ctx := context.Background()
	p, err := r.client.Presign(ctx, service.PresignRequest{Merchant: r.merchant(), Channel: service.ChannelMiniProgram,
		PlanID: 7, OutContractCode: "C" + outTradeNo, OpenID: openID, UserDisplayName: "Zhang San", SuccessNotifyURL: r.notify})
	if err != nil {
		t.Fatalf("Presign: %v", err)
	}
	c, err := r.sb.SignSession(p.SessionID, sandbox.User{})
	if err != nil {
		t.Fatalf("SignSession: %v", err)
	}
	r.next(t, "PAPAY.SIGN")
	tx, err := r.client.CreateTransaction(ctx, service.TransactionRequest{Merchant: r.merchant(), OutTradeNo: outTradeNo,
		ContractID: c.ContractID, Amount: service.Money{Total: 10000, Currency: "HKD"}, Description: "d",
		MerchantCategoryCode: "5968", NotifyURL: r.notify})
	if err != nil {
		t.Fatalf("CreateTransaction: %v", err)
	}
	r.next(t, service.EventTransactionSuccess)
	return tx
}

// next returns the next notification, which must be of eventType.
func (r *sandboxRig) next(t *testing.T, eventType string) service.Notification {
	t.Helper()
	select {
	case n := <-r.notices:
		if n.EventType != eventType {
			t.Fatalf("notification %s, want %s", n.EventType, eventType)
		}
		return n
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s notification", eventType)
		return service.Notification{}
	}
}

// TestRefundAgainstSandbox: papayd's client, its SDK validator and its notification
// parser against the sandbox's refunds: create, query both ways, REFUND.* decoded, and
// the sandbox's refusals as RemoteErrors the service can sort.
func TestRefundAgainstSandbox(t *testing.T) {
	t.Parallel()
	r := newSandboxRig(t)
	ctx := context.Background()
	tx := r.paid(t, "oRigCNY", "TRIG1")
	if _, err := r.sb.ConfigurePayer("oRigCNY", sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorNotEnough,
		RefundNotEnoughAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	req := service.RefundRequest{Merchant: r.merchant(), TransactionID: tx.TransactionID, OutTradeNo: "TRIG1",
		OutRefundNo: "R-RIG|1*@", Reason: "退款", Refund: 2500, Total: 10000, Currency: "HKD", NotifyURL: r.notify}

	// NOT_ENOUGH: a RemoteError, not retried by the client, nothing recorded.
	_, err := r.client.CreateRefund(ctx, req)
	var re *service.RemoteError
	if !errors.As(err, &re) || re.Code != "NOT_ENOUGH" || re.HTTPStatus != http.StatusForbidden {
		t.Fatalf("first attempt: %v, want NOT_ENOUGH", err)
	}
	_, err = r.client.QueryRefund(ctx, service.RefundQuery{SubMchID: r.creds.SubMchID, OutRefundNo: "R-RIG|1*@"})
	if !errors.As(err, &re) || !re.NotFound() {
		t.Fatalf("query after NOT_ENOUGH: %v, want not found", err)
	}

	// The same number again: accepted, the answer without a status.
	created, err := r.client.CreateRefund(ctx, req)
	if err != nil {
		t.Fatalf("CreateRefund: %v", err)
	}
	if created.RefundID == "" || created.OutRefundNo != "R-RIG|1*@" || created.Status != "" || created.Refund != 2500 ||
		created.Currency != "HKD" || created.PayerRefund != 2500 || created.TransactionID != tx.TransactionID ||
		created.SpMchID != r.creds.MchID || created.CreateTime.IsZero() {
		t.Errorf("created %+v", created)
	}
	for _, q := range []service.RefundQuery{
		{SubMchID: r.creds.SubMchID, RefundID: created.RefundID},
		{SubMchID: r.creds.SubMchID, OutRefundNo: "R-RIG|1*@"},
	} {
		got, err := r.client.QueryRefund(ctx, q)
		if err != nil {
			t.Fatalf("QueryRefund %+v: %v", q, err)
		}
		if got.RefundID != created.RefundID || got.Status != service.RefundStatusSuccess || got.Total != 10000 ||
			got.OutTradeNo != "TRIG1" || got.SuccessTime.IsZero() || got.Channel != "ORIGINAL" {
			t.Errorf("query %+v: %+v", q, got)
		}
	}
	n := r.next(t, service.NotificationRefundSuccess)
	if n.Refund == nil || n.Refund.RefundID != created.RefundID || n.Refund.OutRefundNo != "R-RIG|1*@" ||
		n.Refund.Status != service.RefundStatusSuccess || n.SpMchID != r.creds.MchID || n.SubMchID != r.creds.SubMchID ||
		n.Refund.PayerTotal != 10000 || n.Refund.Total != 10000 {
		t.Errorf("REFUND.SUCCESS %+v refund %+v", n, n.Refund)
	}

	// The same number with another amount; an over-refund; a replay.
	other := req
	other.Refund = 2600
	if _, err := r.client.CreateRefund(ctx, other); !errors.As(err, &re) || re.Code != "OUT_REFUND_NO_USED" {
		t.Errorf("reuse: %v, want OUT_REFUND_NO_USED", err)
	}
	over := req
	over.OutRefundNo, over.Refund = "RRIG2", 7501
	if _, err := r.client.CreateRefund(ctx, over); !errors.As(err, &re) || re.Code != "INVALID_REQUEST" || re.Retryable() {
		t.Errorf("over-refund: %v, want INVALID_REQUEST", err)
	}
	if again, err := r.client.CreateRefund(ctx, req); err != nil || again.RefundID != created.RefundID {
		t.Errorf("replay: %+v, %v", again, err)
	}
	got, _ := r.sb.Refund("", "R-RIG|1*@")
	if got.Applied != 1 || len(r.sb.Refunds()) != 1 {
		t.Errorf("sandbox ledger %+v", r.sb.Refunds())
	}

	// A forged REFUND.CLOSED (BuildNotification) verifies and decodes like a sent one.
	forged := got.Resource()
	forged.RefundStatus, forged.SuccessTime = sandbox.RefundClosed, ""
	h, body, err := r.sb.BuildNotification(sandbox.EventRefundClosed, "", forged)
	if err != nil {
		t.Fatal(err)
	}
	parser, err := NewNotificationParser(r.client.Keys(), r.creds.APIv3Key, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	n, err = parser.Parse(h, body)
	if err != nil || n.Refund == nil || n.Refund.Status != service.RefundStatusClosed || n.Refund.RefundID != created.RefundID ||
		!n.Refund.SuccessTime.IsZero() {
		t.Errorf("forged REFUND.CLOSED: %+v, %v", n.Refund, err)
	}
}
