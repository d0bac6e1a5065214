package sandbox_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func TestDeductionSucceeds(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1000", "oPayer1000", e.sinkURL)
	body := e.deductBody(c.ContractID, "T1000", recv.URL)
	body["attach"] = "invoice 42"
	body["goods_tag"] = "WXG"
	body["scene_info"] = map[string]any{"device_id": "013467007045764", "device_ip": "59.37.125.32"}

	res, err := e.client.Post(context.Background(), e.apiURL+transactionsV3, body)
	if err != nil {
		t.Fatalf("deduct: %v", err)
	}
	var got map[string]any
	if err := core.UnMarshalResponse(res.Response, &got); err != nil {
		t.Fatal(err)
	}
	o := e.order(t, "T1000")
	txID, _ := got["transaction_id"].(string)
	if len(txID) != 28 || strings.Trim(txID, "0123456789") != "" || txID != o.TransactionID {
		t.Errorf("transaction_id %q (ledger %q), want 28 digits", txID, o.TransactionID)
	}
	successTime, _ := got["success_time"].(string)
	if ts, err := time.Parse(time.RFC3339, successTime); err != nil || !strings.HasSuffix(successTime, "+08:00") ||
		!ts.Equal(o.SuccessTime.Truncate(time.Second)) {
		t.Errorf("success_time %q, ledger %v", successTime, o.SuccessTime)
	}
	subOpenID, _ := got["payer"].(map[string]any)["sub_openid"].(string)
	if len(subOpenID) != 28 || subOpenID == "oPayer1000" {
		t.Errorf("sub_openid %q, want the user's openid under sub_appid", subOpenID)
	}
	want := map[string]any{
		"sp_mchid": e.creds.MchID, "sub_mchid": e.creds.SubMchID, "sp_appid": e.creds.SPAppID,
		"sub_appid": e.creds.SubAppID, "out_trade_no": "T1000", "transaction_id": txID,
		"contract_id": c.ContractID, "trade_type": "AUTH", "trade_state": "SUCCESS",
		"trade_state_desc": "支付成功", "bank_type": "CFT", "attach": "invoice 42",
		"success_time": successTime, "merchant_category_code": "5968",
		"payer": map[string]any{"sp_openid": "oPayer1000", "sub_openid": subOpenID},
		"amount": map[string]any{"total": 10000.0, "currency": "HKD", "payer_total": 10000.0,
			"payer_currency": "HKD", "exchange_rate": map[string]any{"type": "SETTLEMENT_RATE", "rate": 1e8}},
		"scene_info": map[string]any{"device_id": "013467007045764", "device_ip": "59.37.125.32"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}

	n := recv.next(t)
	if n.req.EventType != sandbox.EventTransactionSuccess || n.req.ResourceType != "encrypt-resource" ||
		n.req.Resource.OriginalType != "transaction" || n.req.Resource.AssociatedData != "transaction" ||
		n.req.Summary == "" {
		t.Errorf("envelope %+v resource %+v", n.req, n.req.Resource)
	}
	if diff := cmp.Diff(want, n.content); diff != "" {
		t.Errorf("TRANSACTION.SUCCESS payload (-want +got):\n%s", diff)
	}
	if _, ok := n.content["id"]; ok {
		t.Error("payload carries id; papay names it transaction_id")
	}
	if o.Deductions != 1 || o.Requests != 1 || e.sb.Deductions() != 1 || o.OpenID != "oPayer1000" ||
		o.PayerTotal != 10000 || o.Behavior != sandbox.BehaviorSucceed {
		t.Errorf("ledger %+v, total deductions %d", o, e.sb.Deductions())
	}
	if d, err := e.sb.WaitDelivered(ctx(t), 2); err != nil { // PAPAY.SIGN and TRANSACTION.SUCCESS
		t.Fatal(err)
	} else if last := e.transactionDeliveries(); len(last) != 1 || !last[0].Delivered || last[0].URL != recv.URL {
		t.Errorf("deliveries %+v", d)
	}
}

func TestDeductionIsIdempotent(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1010", "oIdem", e.sinkURL)

	body := e.deductBody(c.ContractID, "T1010", recv.URL)
	first := e.mustDeduct(t, body)
	again := e.mustDeduct(t, e.deductBody(c.ContractID, "T1010", recv.URL))
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("re-submission answered another order (-first +again):\n%s", diff)
	}
	if o := e.order(t, "T1010"); o.Deductions != 1 || o.Requests != 2 {
		t.Errorf("ledger deductions %d requests %d, want 1 and 2", o.Deductions, o.Requests)
	}

	// Ten identical submissions at once: one deduction, one transaction id.
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for range 10 {
		wg.Go(func() {
			tx, err := e.deduct(t, e.deductBody(c.ContractID, "T1011", recv.URL))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("concurrent deduct: %v", err)
				return
			}
			ids[tx.TransactionID]++
		})
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Errorf("transaction ids %v, want one", ids)
	}
	if o := e.order(t, "T1011"); o.Deductions != 1 || o.Requests != 10 {
		t.Errorf("ledger deductions %d requests %d, want 1 and 10", o.Deductions, o.Requests)
	}
	if n := e.sb.Deductions(); n != 2 {
		t.Errorf("Deductions() = %d, want 2", n)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := e.transactionDeliveries(); len(d) != 2 {
		t.Errorf("%d TRANSACTION.SUCCESS attempts, want one per order: %+v", len(d), d)
	}

	// The same number with other parameters.
	for name, mutate := range map[string]func(map[string]any){
		"amount":      func(b map[string]any) { b["amount"] = map[string]any{"total": 10001, "currency": "HKD"} },
		"currency":    func(b map[string]any) { b["amount"] = map[string]any{"total": 10000, "currency": "USD"} },
		"description": func(b map[string]any) { b["description"] = "another plan" },
		"attach":      func(b map[string]any) { b["attach"] = "x" },
	} {
		b := e.deductBody(c.ContractID, "T1010", recv.URL)
		mutate(b)
		_, err := e.deduct(t, b)
		if err == nil {
			t.Errorf("%s changed: accepted", name)
			continue
		}
		apiError(t, err, http.StatusBadRequest, sandbox.CodeOutTradeNoUsed)
	}
	if n := e.sb.Deductions(); n != 2 {
		t.Errorf("Deductions() = %d after refused re-submissions, want 2", n)
	}
}

func TestDeductionNoAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{SubMchIDs: []string{"1900000110"}})
	terminated := e.signedContract(t, "C1020", "oEnded", e.sinkURL)
	if _, err := e.sb.UserTerminate(terminated.ContractID); err != nil {
		t.Fatal(err)
	}
	pending := e.presign(t, "miniprogram", e.presignBody("C1021", "oPending", e.sinkURL))
	declined := e.presign(t, "miniprogram", e.presignBody("C1022", "oDeclined", e.sinkURL))
	if err := e.sb.DeclineSession(declined); err != nil {
		t.Fatal(err)
	}
	otherBody := e.presignBody("C1023", "oOtherSub", e.sinkURL)
	otherBody["sub_mchid"] = "1900000110"
	other, err := e.sb.SignSession(e.presign(t, "miniprogram", otherBody), sandbox.User{})
	if err != nil {
		t.Fatal(err)
	}
	for name, contractID := range map[string]string{
		"unknown contract":            "Wx00000000000000000000000000",
		"never signed (pending)":      pending,
		"never signed (declined)":     declined,
		"terminated contract":         terminated.ContractID,
		"other sub-merchant contract": other.ContractID,
	} {
		_, err := e.deduct(t, e.deductBody(contractID, "T1020", e.sinkURL))
		if err == nil {
			t.Errorf("%s: deducted", name)
			continue
		}
		apiError(t, err, http.StatusForbidden, sandbox.CodeNoAuth)
	}
	if orders := e.sb.Orders(); len(orders) != 0 || e.sb.Deductions() != 0 {
		t.Errorf("ledger %+v after refusals", orders)
	}
	b := e.deductBody(terminated.ContractID, "T1021", e.sinkURL)
	b["sub_mchid"] = "1999999999" // not a sub-merchant of the provider
	_, err = e.deduct(t, b)
	apiError(t, err, http.StatusForbidden, sandbox.CodeNoAuth)
}

func TestQueryTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{SubMchIDs: []string{"1900000110"}})
	c := e.signedContract(t, "C1030", "oQueryTx", e.sinkURL)
	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "T1030", e.sinkURL))
	sub := "?sub_mchid=" + e.creds.SubMchID
	for name, path := range map[string]string{
		"by transaction_id":        "/" + tx.TransactionID + sub,
		"by out-trade-no":          "/out-trade-no/T1030" + sub,
		"by out_trade_no (typo)":   "/out_trade_no/T1030" + sub,
		"with extra query params":  "/out-trade-no/T1030" + sub + "&sp_appid=" + e.creds.SPAppID,
		"sub_mchid first of query": "/" + tx.TransactionID + sub + "&sub_mchid=1900000110",
	} {
		got, err := e.queryTx(t, path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tx, got); diff != "" {
			t.Errorf("%s (-deduction +query):\n%s", name, diff)
		}
	}
	for name, tt := range map[string]struct {
		path   string
		status int
		code   string
	}{
		"unknown transaction_id":     {"/4200000000202501010000000000" + sub, 404, sandbox.CodeOrderNotExist},
		"unknown out_trade_no":       {"/out-trade-no/T1039" + sub, 404, sandbox.CodeOrderNotExist},
		"id, other sub-merchant":     {"/" + tx.TransactionID + "?sub_mchid=1900000110", 404, sandbox.CodeOrderNotExist},
		"number, other sub-merchant": {"/out-trade-no/T1030?sub_mchid=1900000110", 404, sandbox.CodeOrderNotExist},
		"foreign sub-merchant":       {"/out-trade-no/T1030?sub_mchid=1999999999", 403, sandbox.CodeNoAuth},
		"without sub_mchid":          {"/" + tx.TransactionID, 400, sandbox.CodeParamError},
	} {
		_, err := e.queryTx(t, tt.path)
		if err == nil {
			t.Errorf("%s: found", name)
			continue
		}
		apiErr := apiError(t, err, tt.status, tt.code)
		if tt.code == sandbox.CodeParamError {
			want := map[string]any{"field": "sub_mchid", "location": "query", "issue": "is required"}
			if diff := cmp.Diff(want, apiErr.Detail); diff != "" {
				t.Errorf("%s detail (-want +got):\n%s", name, diff)
			}
		}
	}
}

func TestReverse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1040", "oReverse", e.sinkURL)
	paid := e.mustDeduct(t, e.deductBody(c.ContractID, "T1040", e.sinkURL))

	e.configure(t, "oReverse", sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 60_000})
	pending := e.mustDeduct(t, e.deductBody(c.ContractID, "T1041", e.sinkURL))
	if pending.TradeState != sandbox.TradeUserPaying {
		t.Fatalf("trade_state %s, want USERPAYING", pending.TradeState)
	}
	if err := e.reverse(t, "T1041"); err != nil {
		t.Fatalf("reverse: %v", err)
	}
	closed := e.queryByNo(t, "T1041")
	if closed.TradeState != sandbox.TradeClosed || closed.SuccessTime != "" || closed.Amount.PayerTotal != 0 ||
		closed.TransactionID != pending.TransactionID {
		t.Errorf("after reverse: %+v", closed)
	}
	apiError(t, e.reverse(t, "T1041"), http.StatusBadRequest, sandbox.CodeOrderClosed)
	_, err := e.deduct(t, e.deductBody(c.ContractID, "T1041", e.sinkURL))
	apiError(t, err, http.StatusBadRequest, sandbox.CodeOrderClosed)

	apiError(t, e.reverse(t, "T1040"), http.StatusBadRequest, sandbox.CodeOrderPaid)
	if got := e.queryByNo(t, "T1040"); got.TradeState != sandbox.TradeSuccess || got.SuccessTime != paid.SuccessTime {
		t.Errorf("paid order after a refused reverse: %+v", got)
	}
	apiError(t, e.reverse(t, "T1049"), http.StatusNotFound, sandbox.CodeNotFound)

	// A failed order, reversed with sub_mchid in the query string and no body.
	e.configure(t, "oReverse", sandbox.PayerConfig{Behavior: sandbox.BehaviorInsufficientBalance})
	_, err = e.deduct(t, e.deductBody(c.ContractID, "T1042", e.sinkURL))
	apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
	res, err := e.client.Request(context.Background(), http.MethodPost,
		e.apiURL+transactionsV3+"/out-trade-no/T1042/reverse", nil,
		map[string][]string{"sub_mchid": {e.creds.SubMchID}}, nil, "")
	if err != nil || res.Response.StatusCode != http.StatusNoContent {
		t.Fatalf("reverse with query sub_mchid: %v", err)
	}
	if got := e.queryByNo(t, "T1042"); got.TradeState != sandbox.TradeClosed {
		t.Errorf("trade_state %s, want CLOSED", got.TradeState)
	}
	_, err = e.client.Post(context.Background(), e.apiURL+transactionsV3+"/out-trade-no/T1042/reverse", map[string]any{})
	apiErr := apiError(t, err, http.StatusBadRequest, sandbox.CodeParamError)
	if diff := cmp.Diff(map[string]any{"field": "/sub_mchid", "location": "body", "issue": "is required"}, apiErr.Detail); diff != "" {
		t.Errorf("reverse without sub_mchid (-want +got):\n%s", diff)
	}
	if n := e.sb.Deductions(); n != 1 {
		t.Errorf("Deductions() = %d, want 1", n)
	}
}

func TestUserPayingSettles(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1050", "oUserPaying", e.sinkURL)
	e.configure(t, "oUserPaying", sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 50})

	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "T1050", recv.URL))
	if tx.TradeState != sandbox.TradeUserPaying || tx.SuccessTime != "" || tx.Amount.PayerTotal != 0 ||
		tx.TradeStateDesc == "" {
		t.Errorf("answer %+v, want USERPAYING without success_time", tx)
	}
	n := recv.next(t)
	if n.req.EventType != sandbox.EventTransactionSuccess || n.content["trade_state"] != "SUCCESS" ||
		n.content["transaction_id"] != tx.TransactionID || n.content["success_time"] == nil {
		t.Errorf("notification %+v %v", n.req, n.content)
	}
	got := e.queryByNo(t, "T1050")
	if got.TradeState != sandbox.TradeSuccess || got.SuccessTime == "" || got.Amount.PayerTotal != 10000 {
		t.Errorf("after settling: %+v", got)
	}
	if o := e.order(t, "T1050"); o.Deductions != 1 {
		t.Errorf("ledger deductions %d, want 1", o.Deductions)
	}
}

func TestUserPayingReversedNeverSettles(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1060", "oReversedFirst", e.sinkURL)
	// Long enough for the reverse to come first on a loaded machine.
	e.configure(t, "oReversedFirst", sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 500})
	start := time.Now()
	e.mustDeduct(t, e.deductBody(c.ContractID, "T1060", recv.URL))
	if err := e.reverse(t, "T1060"); err != nil {
		t.Fatal(err)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil { // the pending settlement counts until its time
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("WaitIdle returned %v after the deduction, before the settlement time", d)
	}
	if got := e.queryByNo(t, "T1060"); got.TradeState != sandbox.TradeClosed {
		t.Errorf("trade_state %s, want CLOSED", got.TradeState)
	}
	if o := e.order(t, "T1060"); o.Deductions != 0 || !o.SuccessTime.IsZero() {
		t.Errorf("ledger %+v, want no deduction", o)
	}
	if d := e.transactionDeliveries(); len(d) != 0 {
		t.Errorf("TRANSACTION.SUCCESS sent for a reversed order: %+v", d)
	}
}

func TestNotifyFirst(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1070", "oNotifyFirst", e.sinkURL)
	e.configure(t, "oNotifyFirst", sandbox.PayerConfig{Behavior: sandbox.BehaviorNotifyFirst})

	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "T1070", recv.URL))
	answered := time.Now()
	select {
	case n := <-recv.got: // already there: the receiver had it (and acknowledged) before the answer
		if n.err != nil || n.content["transaction_id"] != tx.TransactionID || n.content["trade_state"] != "SUCCESS" {
			t.Errorf("notification %v (%v)", n.content, n.err)
		}
		if !n.at.Before(answered) {
			t.Errorf("notification at %v, answer at %v", n.at, answered)
		}
	default:
		t.Fatal("the deduction answered before the notification reached the merchant")
	}
	if d := e.transactionDeliveries(); len(d) != 1 || !d[0].Delivered {
		t.Errorf("deliveries %+v", d)
	}
	if tx.TradeState != sandbox.TradeSuccess {
		t.Errorf("trade_state %s", tx.TradeState)
	}
}

func TestNotifyFirstAnswersOnceDeliveryGivesUp(t *testing.T) {
	t.Parallel()
	failing := newFailingServer(t)
	e := newEnv(t, sandbox.Options{TimeScale: 0.00001}) // all ten attempts in about 150 ms
	c := e.signedContract(t, "C1075", "oNotifyFirstFail", e.sinkURL)
	e.configure(t, "oNotifyFirstFail", sandbox.PayerConfig{Behavior: sandbox.BehaviorNotifyFirst})
	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "T1075", failing))
	if d := e.transactionDeliveries(); len(d) != sandbox.MaxAttempts || !d[len(d)-1].Final {
		t.Errorf("answered after %d attempts, want all %d", len(d), sandbox.MaxAttempts)
	}
	if tx.TradeState != sandbox.TradeSuccess {
		t.Errorf("trade_state %s", tx.TradeState)
	}
}

func TestNoAnswer(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1080", "oNoAnswer", e.sinkURL)
	e.configure(t, "oNoAnswer", sandbox.PayerConfig{Behavior: sandbox.BehaviorNoAnswer})

	_, err := e.deduct(t, e.deductBody(c.ContractID, "T1080", recv.URL))
	var apiErr *core.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want a network error", err)
	}
	o := e.order(t, "T1080")
	if o.Deductions != 1 || o.TradeState != sandbox.TradeSuccess {
		t.Errorf("ledger %+v, want the deduction made", o)
	}
	if n := recv.next(t); n.content["transaction_id"] != o.TransactionID || n.content["trade_state"] != "SUCCESS" {
		t.Errorf("notification %v", n.content)
	}
	if got := e.queryByNo(t, "T1080"); got.TradeState != sandbox.TradeSuccess {
		t.Errorf("query: %+v", got)
	}
	// Re-submitting the same order answers it (the behaviour applies to the attempt only).
	again := e.mustDeduct(t, e.deductBody(c.ContractID, "T1080", recv.URL))
	if again.TransactionID != o.TransactionID || e.sb.Deductions() != 1 {
		t.Errorf("re-submission %+v, deductions %d", again, e.sb.Deductions())
	}
}

func TestSlow(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1090", "oSlow", e.sinkURL)
	const delay = 400 * time.Millisecond
	e.configure(t, "oSlow", sandbox.PayerConfig{Behavior: sandbox.BehaviorSlow, DelayMS: delay.Milliseconds()})

	impatient := sdkClient(t, e.creds, &http.Client{Transport: e.httpClient.Transport, Timeout: 100 * time.Millisecond},
		option.WithWechatPayCertificate([]*x509.Certificate{e.creds.PlatformCert}))
	_, err := e.deductWith(t, impatient, e.deductBody(c.ContractID, "T1090", recv.URL))
	var apiErr *core.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want a client timeout", err)
	}
	// The notification comes although the merchant never saw the answer (waiting for it
	// also lets a slow machine finish the request the client gave up on).
	if n := recv.next(t); n.content["out_trade_no"] != "T1090" || n.content["trade_state"] != "SUCCESS" {
		t.Errorf("notification %v", n.content)
	}
	if o := e.order(t, "T1090"); o.Deductions != 1 || o.TradeState != sandbox.TradeSuccess {
		t.Errorf("ledger %+v, want the deduction made", o)
	}

	start := time.Now()
	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "T1091", recv.URL))
	if d := time.Since(start); d < delay {
		t.Errorf("answered after %v, want at least %v", d, delay)
	}
	if tx.TradeState != sandbox.TradeSuccess || e.sb.Deductions() != 2 {
		t.Errorf("answer %+v, deductions %d", tx, e.sb.Deductions())
	}
}

func TestInsufficientBalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1100", "oPoor", e.sinkURL)

	e.configure(t, "oPoor", sandbox.PayerConfig{Behavior: sandbox.BehaviorInsufficientBalance})
	_, err := e.deduct(t, e.deductBody(c.ContractID, "T1100", e.sinkURL))
	if apiErr := apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough); apiErr.Message != "balance insufficient" {
		t.Errorf("message %q", apiErr.Message)
	}
	if got := e.queryByNo(t, "T1100"); got.TradeState != sandbox.TradePayError || got.SuccessTime != "" ||
		got.Amount.PayerTotal != 0 {
		t.Errorf("query after refusal: %+v", got)
	}

	// A balance: 60.00 passes, the next 60.00 does not.
	e.configure(t, "oPoor", sandbox.PayerConfig{Balance: ptr[int64](10000)})
	b := func(no string) map[string]any {
		body := e.deductBody(c.ContractID, no, e.sinkURL)
		body["amount"] = map[string]any{"total": 6000, "currency": "HKD"}
		return body
	}
	e.mustDeduct(t, b("T1101"))
	if p := e.sb.Payer("oPoor"); p.Balance == nil || *p.Balance != 4000 {
		t.Errorf("balance %v, want 4000", p.Balance)
	}
	_, err = e.deduct(t, b("T1102"))
	apiError(t, err, http.StatusForbidden, sandbox.CodeNotEnough)
	if p := e.sb.Payer("oPoor"); *p.Balance != 4000 {
		t.Errorf("balance %d after a refusal, want 4000", *p.Balance)
	}
	failed := e.order(t, "T1102")
	if failed.TradeState != sandbox.TradePayError || failed.Deductions != 0 {
		t.Errorf("refused order %+v", failed)
	}

	// Topped up, the failed order's number may be tried again (it was never paid).
	e.configure(t, "oPoor", sandbox.PayerConfig{Balance: ptr[int64](6000)})
	tx := e.mustDeduct(t, b("T1102"))
	if tx.TradeState != sandbox.TradeSuccess || tx.TransactionID != failed.TransactionID {
		t.Errorf("retry %+v, want SUCCESS of %s", tx, failed.TransactionID)
	}
	if p := e.sb.Payer("oPoor"); *p.Balance != 0 || e.sb.Deductions() != 2 {
		t.Errorf("balance %d deductions %d, want 0 and 2", *p.Balance, e.sb.Deductions())
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if d := e.transactionDeliveries(); len(d) != 2 {
		t.Errorf("%d TRANSACTION.SUCCESS, want one per paid order (none for refusals)", len(d))
	}
}

func TestExchangeRate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1110", "oForeign", e.sinkURL)
	tests := []struct {
		name          string
		cfg           sandbox.PayerConfig
		total         int64
		wantCurrency  string
		wantRate      int64
		wantPayerPays int64
	}{
		{"default: order currency", sandbox.PayerConfig{}, 10000, "HKD", 100000000, 10000},
		{"same currency ignores the rate", sandbox.PayerConfig{Currency: "HKD", ExchangeRate: 91234567}, 10000, "HKD", 100000000, 10000},
		{"default foreign rate", sandbox.PayerConfig{Currency: "CNY"}, 1000, "CNY", 90000000, 900},
		{"rate", sandbox.PayerConfig{Currency: "CNY", ExchangeRate: 91234567}, 10001, "CNY", 91234567, 9124}, // 9124.366
		{"half rounds up", sandbox.PayerConfig{Currency: "CNY", ExchangeRate: 50000000}, 3, "CNY", 50000000, 2},
		{"below half rounds down", sandbox.PayerConfig{Currency: "CNY", ExchangeRate: 49999999}, 1, "CNY", 49999999, 0},
		{"upward rate", sandbox.PayerConfig{Currency: "JPY", ExchangeRate: 1925000000}, 1234, "JPY", 1925000000, 23755}, // 23754.5
	}
	for i, tt := range tests {
		e.configure(t, "oForeign", tt.cfg)
		body := e.deductBody(c.ContractID, "T111"+string(rune('0'+i)), e.sinkURL)
		body["amount"] = map[string]any{"total": tt.total, "currency": "HKD"}
		tx := e.mustDeduct(t, body)
		want := sandbox.TransactionAmount{Total: tt.total, Currency: "HKD", PayerTotal: tt.wantPayerPays,
			PayerCurrency: tt.wantCurrency, ExchangeRate: &sandbox.ExchangeRate{Type: "SETTLEMENT_RATE", Rate: tt.wantRate}}
		if diff := cmp.Diff(want, tx.Amount); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}

	// The balance is kept in the payer currency.
	e.configure(t, "oForeign", sandbox.PayerConfig{Currency: "CNY", Balance: ptr[int64](1000)})
	body := e.deductBody(c.ContractID, "T1119", e.sinkURL)
	body["amount"] = map[string]any{"total": 1000, "currency": "HKD"} // 900 CNY
	e.mustDeduct(t, body)
	if p := e.sb.Payer("oForeign"); *p.Balance != 100 {
		t.Errorf("balance %d CNY, want 100", *p.Balance)
	}
}

func TestConvertAmount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ amount, rate, want int64 }{
		{10000, 100000000, 10000}, {1, 50000000, 1}, {1, 49999999, 0}, {5, 10000000, 1}, {15, 10000000, 2},
		{528800, 8000000, 42304}, {0, 90000000, 0}, {1 << 62, 1 << 40, 1<<63 - 1},
	} {
		if got := sandbox.ConvertAmount(tt.amount, tt.rate); got != tt.want {
			t.Errorf("ConvertAmount(%d, %d) = %d, want %d", tt.amount, tt.rate, got, tt.want)
		}
	}
}

func TestPromotion(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1120", "oPromo", e.sinkURL)
	e.configure(t, "oPromo", sandbox.PayerConfig{Promotion: &sandbox.Promotion{
		PromotionID: "109519", Name: "单品惠-6", Scope: "SINGLE", Type: "DISCOUNT", Amount: 1000, ActivityID: "931386",
		GoodsDetail: []sandbox.PromotionGoods{{GoodsID: "plan_monthly", GoodsRemark: "备注", DiscountAmount: 1000, Quantity: 1, Price: 10000}},
	}})
	res, err := e.client.Post(context.Background(), e.apiURL+transactionsV3, e.deductBody(c.ContractID, "T1120", recv.URL))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := core.UnMarshalResponse(res.Response, &got); err != nil {
		t.Fatal(err)
	}
	want := []any{map[string]any{
		"promotion_id": "109519", "name": "单品惠-6", "scope": "SINGLE", "type": "DISCOUNT", "amount": 1000.0,
		"currency": "HKD", "activity_id": "931386", "wxpay_contribute_amount": 1000.0,
		"merchant_contribute_amount": 0.0, "other_contribute_amount": 0.0,
		"goods_detail": []any{map[string]any{"goods_id": "plan_monthly", "goods_remark": "备注",
			"discount_amount": 1000.0, "quantity": 1.0, "price": 10000.0}},
	}}
	if diff := cmp.Diff(want, got["promotion_detail"]); diff != "" {
		t.Errorf("promotion_detail (-want +got):\n%s", diff)
	}
	if amount := got["amount"].(map[string]any); amount["total"] != 10000.0 || amount["payer_total"] != 9000.0 {
		t.Errorf("amount %v, want the payer to pay total minus the promotion", amount)
	}
	if n := recv.next(t); cmp.Diff(want, n.content["promotion_detail"]) != "" {
		t.Errorf("notification promotion_detail %v", n.content["promotion_detail"])
	}
}

func TestDeductionParamErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1130", "oParamTx", e.sinkURL)
	valid := func(mutate func(map[string]any)) map[string]any {
		b := e.deductBody(c.ContractID, "T1130", e.sinkURL)
		mutate(b)
		return b
	}
	tests := []struct {
		name   string
		body   any
		detail map[string]any
	}{
		{"amount zero", valid(func(b map[string]any) { b["amount"] = map[string]any{"total": 0, "currency": "HKD"} }),
			map[string]any{"field": "/amount/total", "location": "body", "value": 0.0, "issue": "must be a positive integer (minor units of the currency)"}},
		{"amount negative", valid(func(b map[string]any) { b["amount"] = map[string]any{"total": -5, "currency": "HKD"} }),
			map[string]any{"field": "/amount/total", "location": "body", "value": -5.0, "issue": "must be a positive integer (minor units of the currency)"}},
		{"amount not an integer", valid(func(b map[string]any) { b["amount"] = map[string]any{"total": 1.5, "currency": "HKD"} }),
			map[string]any{"field": "/amount/total", "location": "body", "issue": "must be a JSON number"}},
		{"bad currency", valid(func(b map[string]any) { b["amount"] = map[string]any{"total": 100, "currency": "XYZ"} }),
			map[string]any{"field": "/amount/currency", "location": "body", "value": "XYZ", "issue": "must be an ISO 4217 currency supported by WeChat Pay Global"}},
		{"missing currency", valid(func(b map[string]any) { b["amount"] = map[string]any{"total": 100} }),
			map[string]any{"field": "/amount/currency", "location": "body", "issue": "is required"}},
		{"missing amount", valid(func(b map[string]any) { delete(b, "amount") }),
			map[string]any{"field": "/amount", "location": "body", "issue": "is required"}},
		{"description too long", valid(func(b map[string]any) { b["description"] = strings.Repeat("d", 129) }),
			map[string]any{"field": "/description", "location": "body", "value": strings.Repeat("d", 129), "issue": "must be 1 to 128 bytes long"}},
		{"description emoji", valid(func(b map[string]any) { b["description"] = "plan 🍍" }),
			map[string]any{"field": "/description", "location": "body", "value": "plan 🍍", "issue": "must contain only 1 to 3 byte UTF-8 characters (no emoji)"}},
		{"missing notify_url", valid(func(b map[string]any) { delete(b, "notify_url") }),
			map[string]any{"field": "/notify_url", "location": "body", "issue": "is required"}},
		{"notify_url with query", valid(func(b map[string]any) { b["notify_url"] = "https://m.example/n?o=1" }),
			map[string]any{"field": "/notify_url", "location": "body", "value": "https://m.example/n?o=1", "issue": "must not carry query parameters or a fragment"}},
		{"relative notify_url", valid(func(b map[string]any) { b["notify_url"] = "/papay/notify" }),
			map[string]any{"field": "/notify_url", "location": "body", "value": "/papay/notify", "issue": "must be an absolute https URL"}},
		{"attach too long", valid(func(b map[string]any) { b["attach"] = strings.Repeat("a", 128) }),
			map[string]any{"field": "/attach", "location": "body", "value": strings.Repeat("a", 128), "issue": "must be 1 to 127 bytes long"}},
		{"out_trade_no too long", valid(func(b map[string]any) { b["out_trade_no"] = strings.Repeat("1", 33) }),
			map[string]any{"field": "/out_trade_no", "location": "body", "value": strings.Repeat("1", 33), "issue": "must be 1 to 32 bytes long"}},
		{"out_trade_no with a slash", valid(func(b map[string]any) { b["out_trade_no"] = "T/1" }),
			map[string]any{"field": "/out_trade_no", "location": "body", "value": "T/1", "issue": "may contain only letters, digits and _-|*@"}},
		{"missing merchant_category_code", valid(func(b map[string]any) { delete(b, "merchant_category_code") }),
			map[string]any{"field": "/merchant_category_code", "location": "body", "issue": "is required"}},
		{"missing contract_id", valid(func(b map[string]any) { delete(b, "contract_id") }),
			map[string]any{"field": "/contract_id", "location": "body", "issue": "is required"}},
		{"bad device_ip", valid(func(b map[string]any) { b["scene_info"] = map[string]any{"device_ip": "a.b.c.d"} }),
			map[string]any{"field": "/scene_info/device_ip", "location": "body", "value": "a.b.c.d", "issue": "must be an IP address"}},
		{"first failure only", valid(func(b map[string]any) { delete(b, "description"); delete(b, "notify_url") }),
			map[string]any{"field": "/description", "location": "body", "issue": "is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.client.Post(context.Background(), e.apiURL+transactionsV3, tt.body)
			apiErr := apiError(t, err, http.StatusBadRequest, sandbox.CodeParamError)
			if diff := cmp.Diff(tt.detail, apiErr.Detail); diff != "" {
				t.Errorf("detail (-want +got):\n%s", diff)
			}
		})
	}
	t.Cleanup(func() {
		if orders := e.sb.Orders(); len(orders) != 0 {
			t.Errorf("orders created by invalid requests: %+v", orders)
		}
	})
}

func TestPayerAndOrderControlAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1140", "oCtl", e.sinkURL)

	status, out := e.control(t, http.MethodGet, "/sandbox/v1/payers/oCtl", nil)
	if status != http.StatusOK || out["configured"] != false || out["openid"] != "oCtl" || out["balance"] != nil {
		t.Errorf("unconfigured payer: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodPost, "/sandbox/v1/payers/oCtl:configure",
		map[string]any{"balance": 50000, "currency": "CNY", "exchange_rate": 90000000, "behavior": "SUCCEED"})
	if status != http.StatusOK || out["configured"] != true || out["balance"] != 50000.0 || out["currency"] != "CNY" {
		t.Fatalf("configure: %d %v", status, out)
	}
	e.mustDeduct(t, e.deductBody(c.ContractID, "T1140", e.sinkURL))
	if _, out = e.control(t, http.MethodGet, "/sandbox/v1/payers/oCtl", nil); out["balance"] != 41000.0 {
		t.Errorf("balance %v, want 41000", out["balance"])
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders/T1140", nil)
	if status != http.StatusOK || out["deductions"] != 1.0 || out["requests"] != 1.0 || out["trade_state"] != "SUCCESS" ||
		out["payer_total"] != 9000.0 || out["openid"] != "oCtl" || out["contract_id"] != c.ContractID {
		t.Errorf("order: %d %v", status, out)
	}
	if status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders/T1140?sub_mchid="+e.creds.SubMchID, nil); status != http.StatusOK {
		t.Errorf("order by sub_mchid: %d %v", status, out)
	}
	status, out = e.control(t, http.MethodGet, "/sandbox/v1/orders", nil)
	if orders, _ := out["orders"].([]any); status != http.StatusOK || len(orders) != 1 || out["deductions"] != 1.0 {
		t.Errorf("ledger: %d %v", status, out)
	}

	for name, tt := range map[string]struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		"unknown order":      {http.MethodGet, "/sandbox/v1/orders/T1149", nil, 404, "NOT_FOUND"},
		"other sub-merchant": {http.MethodGet, "/sandbox/v1/orders/T1140?sub_mchid=1900000110", nil, 404, "NOT_FOUND"},
		"unknown behavior":   {http.MethodPost, "/sandbox/v1/payers/oCtl:configure", map[string]any{"behavior": "EXPLODE"}, 400, "INVALID_ARGUMENT"},
		"misspelt field":     {http.MethodPost, "/sandbox/v1/payers/oCtl:configure", map[string]any{"behaviour": "SLOW"}, 400, "INVALID_ARGUMENT"},
		"negative balance":   {http.MethodPost, "/sandbox/v1/payers/oCtl:configure", map[string]any{"balance": -1}, 400, "INVALID_ARGUMENT"},
		"bad currency":       {http.MethodPost, "/sandbox/v1/payers/oCtl:configure", map[string]any{"currency": "XYZ"}, 400, "INVALID_ARGUMENT"},
		"unknown verb":       {http.MethodPost, "/sandbox/v1/payers/oCtl:charge", nil, 404, "NOT_FOUND"},
	} {
		status, out := e.control(t, tt.method, tt.path, tt.body)
		if status != tt.status || out["code"] != tt.code {
			t.Errorf("%s: %d %v, want %d %s", name, status, out, tt.status, tt.code)
		}
	}
	// A failed configuration leaves the payer as it was; an empty one resets it.
	if p := e.sb.Payer("oCtl"); p.Balance == nil || *p.Balance != 41000 || p.Currency != "CNY" {
		t.Errorf("payer after refused configurations: %+v", p)
	}
	if status, out = e.control(t, http.MethodPost, "/sandbox/v1/payers/oCtl:configure", nil); status != http.StatusOK ||
		out["balance"] != nil || out["configured"] != true {
		t.Errorf("reset: %d %v", status, out)
	}
}

func TestBuildTransactionNotificationWithTamperedAmount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "C1150", "oForge", e.sinkURL)
	e.mustDeduct(t, e.deductBody(c.ContractID, "T1150", e.sinkURL))
	res := e.order(t, "T1150").Resource()
	res.Amount.Total, res.Amount.PayerTotal = 1, 1

	h, body, err := e.sb.BuildNotification(sandbox.EventTransactionSuccess, "", res)
	if err != nil {
		t.Fatal(err)
	}
	n, content, err := parse(t, e.creds, h, body)
	if err != nil {
		t.Fatalf("the SDK rejected a built TRANSACTION.SUCCESS: %v", err)
	}
	if n.EventType != sandbox.EventTransactionSuccess || n.Resource.OriginalType != "transaction" ||
		n.Resource.AssociatedData != "transaction" {
		t.Errorf("envelope %+v resource %+v", n, n.Resource)
	}
	amount, _ := content["amount"].(map[string]any)
	if amount["total"] != 1.0 || content["out_trade_no"] != "T1150" || content["transaction_id"] != res.TransactionID {
		t.Errorf("payload %v", content)
	}
	if o := e.order(t, "T1150"); o.Total != 10000 {
		t.Errorf("the ledger changed: total %d", o.Total)
	}
}

// newFailingServer returns the URL of a notification endpoint that always answers 503.
func newFailingServer(t *testing.T) string {
	t.Helper()
	recv := newReceiver(t, testCredentials(t), certVerifier(testCredentials(t)),
		503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	return recv.URL
}
