package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

func (e *env) setFaults(t *testing.T, seed uint64, rules ...sandbox.FaultRule) {
	t.Helper()
	if err := e.sb.SetFaults(sandbox.Faults{Seed: seed, Rules: rules}); err != nil {
		t.Fatalf("SetFaults: %v", err)
	}
}

// onDeductions filters a rule to POST /v3/global/papay/transactions.
func onDeductions(r sandbox.FaultRule) sandbox.FaultRule {
	r.Method, r.Path = http.MethodPost, transactionsV3
	return r
}

// transportError asserts that err is a transport failure, not an answer.
func transportError(t *testing.T, err error) {
	t.Helper()
	var apiErr *core.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want a transport error (connection closed)", err)
	}
}

// verifyAPIError checks that an error answer is signed by the platform certificate.
func verifyAPIError(t *testing.T, e *env, apiErr *core.APIError) {
	t.Helper()
	resp := &http.Response{Header: apiErr.Header, Body: io.NopCloser(strings.NewReader(apiErr.Body))}
	if err := validators.NewWechatPayResponseValidator(certVerifier(e.creds)).Validate(context.Background(), resp); err != nil {
		t.Errorf("%d %s answer is not signed: %v", apiErr.StatusCode, apiErr.Code, err)
	}
}

// drain returns the notifications already received, without waiting.
func (r *receiver) drain() []notice {
	var out []notice
	for {
		select {
		case n := <-r.got:
			out = append(out, n)
		default:
			return out
		}
	}
}

func faultKinds(log []sandbox.FaultEvent) []sandbox.FaultKind {
	var out []sandbox.FaultKind
	for _, ev := range log {
		out = append(out, ev.Kind)
	}
	return out
}

func TestFaultSystemErrorThenSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF00", "oFault0", e.sinkURL)
	e.setFaults(t, 0, onDeductions(sandbox.FaultRule{Kind: sandbox.FaultSystemError, Count: 1}))
	body := e.deductBody(c.ContractID, "F000", e.sinkURL)

	// A query does not match the rule.
	if _, err := e.queryTx(t, "/out-trade-no/F000?sub_mchid="+e.creds.SubMchID); err == nil {
		t.Fatal("query of an unknown order succeeded")
	} else {
		apiError(t, err, http.StatusNotFound, sandbox.CodeOrderNotExist)
	}
	_, err := e.deduct(t, body)
	verifyAPIError(t, e, apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError))
	if _, ok := e.sb.Order("F000"); ok {
		t.Fatal("the deduction was executed despite SYSTEM_ERROR")
	}
	tx := e.mustDeduct(t, body)
	if o := e.order(t, "F000"); tx.TradeState != sandbox.TradeSuccess || o.Deductions != 1 || o.Requests != 1 {
		t.Errorf("after the retry: %s, order %+v", tx.TradeState, o)
	}
	log := e.sb.FaultLog()
	if len(log) != 1 || log[0].Kind != sandbox.FaultSystemError || log[0].Method != http.MethodPost ||
		log[0].Path != transactionsV3 || log[0].Time.IsZero() || e.sb.FaultCount() != 1 {
		t.Errorf("fault log %+v", log)
	}
	if f := e.sb.Faults(); f.Rules[0].Fired != 1 {
		t.Errorf("rule fired %d times", f.Rules[0].Fired)
	}
}

func TestFaultRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF10", "oFault1", e.sinkURL)
	e.setFaults(t, 0, onDeductions(sandbox.FaultRule{Kind: sandbox.FaultRateLimit, Count: 2}))
	body := e.deductBody(c.ContractID, "F100", e.sinkURL)
	for range 2 {
		_, err := e.deduct(t, body)
		verifyAPIError(t, e, apiError(t, err, http.StatusTooManyRequests, sandbox.CodeRateLimited))
	}
	if _, ok := e.sb.Order("F100"); ok {
		t.Fatal("a rate-limited deduction was executed")
	}
	e.mustDeduct(t, body)
	if o := e.order(t, "F100"); o.Deductions != 1 || o.Requests != 1 {
		t.Errorf("order %+v", o)
	}
	if got := e.sb.FaultCounts(); got[sandbox.FaultRateLimit] != 2 || len(got) != 1 {
		t.Errorf("fault counts %v", got)
	}
}

func TestFaultDropConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF20", "oFault2", e.sinkURL)
	e.setFaults(t, 0, onDeductions(sandbox.FaultRule{Kind: sandbox.FaultDropConnection, Count: 1}))
	body := e.deductBody(c.ContractID, "F200", e.sinkURL)
	_, err := e.deduct(t, body)
	transportError(t, err)
	if _, ok := e.sb.Order("F200"); ok || e.sb.Deductions() != 0 {
		t.Fatal("a dropped request was executed")
	}
	e.mustDeduct(t, body)
	if o := e.order(t, "F200"); o.Deductions != 1 || o.Requests != 1 {
		t.Errorf("order %+v", o)
	}
	if got := faultKinds(e.sb.FaultLog()); !slices.Equal(got, []sandbox.FaultKind{sandbox.FaultDropConnection}) {
		t.Errorf("fault log %v", got)
	}
}

func TestFaultLoseResponse(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF30", "oFault3", e.sinkURL)
	e.setFaults(t, 0, onDeductions(sandbox.FaultRule{Kind: sandbox.FaultLoseResponse, Count: 1}))
	body := e.deductBody(c.ContractID, "F300", recv.URL)

	_, err := e.deduct(t, body)
	transportError(t, err)
	o := e.order(t, "F300")
	if o.TradeState != sandbox.TradeSuccess || o.Deductions != 1 || o.Requests != 1 {
		t.Fatalf("the lost answer's deduction: %+v", o)
	}
	if n := recv.next(t); n.req.EventType != sandbox.EventTransactionSuccess || n.content["transaction_id"] != o.TransactionID {
		t.Errorf("notification %s %v", n.req.EventType, n.content)
	}

	// The merchant retries with the same out_trade_no: the same transaction, no new charge.
	tx := e.mustDeduct(t, body)
	if tx.TransactionID != o.TransactionID || tx.TradeState != sandbox.TradeSuccess {
		t.Errorf("retry answered %s %s, want %s SUCCESS", tx.TransactionID, tx.TradeState, o.TransactionID)
	}
	if o := e.order(t, "F300"); o.Deductions != 1 || o.Requests != 2 || e.sb.Deductions() != 1 {
		t.Errorf("after the retry: %+v, %d deductions", o, e.sb.Deductions())
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.transactionDeliveries()); n != 1 {
		t.Errorf("%d TRANSACTION.SUCCESS attempts, want 1", n)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF40", "oFault4", e.sinkURL)
	const delay = 250 * time.Millisecond
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultLatency, Method: "get", PathPrefix: transactionsV3 + "/",
		Count: 1, DelayMS: int(delay.Milliseconds())})
	e.mustDeduct(t, e.deductBody(c.ContractID, "F400", e.sinkURL)) // POST: not matched
	start := time.Now()
	e.queryByNo(t, "F400")
	if took := time.Since(start); took < delay {
		t.Errorf("delayed query took %v, want at least %v", took, delay)
	}
	e.queryByNo(t, "F400") // the count is spent
	log := e.sb.FaultLog()
	if len(log) != 1 || log[0].Kind != sandbox.FaultLatency || log[0].DelayMS != 250 || log[0].Method != http.MethodGet {
		t.Errorf("fault log %+v", log)
	}

	// A client that gives up during the latency does not stop the deduction: it
	// happens and only the answer is lost.
	e.setFaults(t, 0, onDeductions(sandbox.FaultRule{Kind: sandbox.FaultLatency, Count: 1, DelayMS: 300}))
	cctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.client.Post(cctx, e.apiURL+transactionsV3, e.deductBody(c.ContractID, "F401", e.sinkURL))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		if o, ok := e.sb.Order("F401"); ok {
			if o.Deductions != 1 {
				t.Errorf("order %+v", o)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deduction of the abandoned request never happened")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaultFiltersAndPrecedence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF50", "oFault5", e.sinkURL)
	e.configure(t, c.OpenID, sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: 60_000})
	e.setFaults(t, 0,
		// Exact path: the reverse (POST .../out-trade-no/{no}/reverse) is not matched.
		onDeductions(sandbox.FaultRule{Kind: sandbox.FaultRateLimit, Count: 1}),
		// Not reached while the rate_limit rule fires first, then fires.
		onDeductions(sandbox.FaultRule{Kind: sandbox.FaultSystemError, Count: 1}),
		sandbox.FaultRule{Kind: sandbox.FaultSystemError, PathPrefix: contractsV3, Count: 1},
	)
	body := e.deductBody(c.ContractID, "F500", e.sinkURL)
	_, err := e.deduct(t, body)
	apiError(t, err, http.StatusTooManyRequests, sandbox.CodeRateLimited)
	_, err = e.deduct(t, body)
	apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)
	if tx := e.mustDeduct(t, body); tx.TradeState != sandbox.TradeUserPaying {
		t.Fatalf("trade_state %s", tx.TradeState)
	}
	if err := e.reverse(t, "F500"); err != nil {
		t.Errorf("reverse: %v", err)
	}
	_, err = e.client.Get(context.Background(), e.apiURL+contractsV3+"/"+c.ContractID+e.queryParams())
	apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)
	want := []sandbox.FaultKind{sandbox.FaultRateLimit, sandbox.FaultSystemError, sandbox.FaultSystemError}
	log := e.sb.FaultLog()
	if got := faultKinds(log); !slices.Equal(got, want) || log[1].Rule != 1 || log[2].Rule != 2 {
		t.Errorf("fault log %+v", log)
	}
}

func TestFaultProbabilityIsReproducible(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF60", "oFault6", e.sinkURL)
	query := e.apiURL + contractsV3 + "/" + c.ContractID + e.queryParams()
	run := func(seed uint64, rule sandbox.FaultRule) []bool {
		e.setFaults(t, seed, rule)
		var failed []bool
		for range 40 {
			_, err := e.client.Get(context.Background(), query)
			if err != nil {
				apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)
			}
			failed = append(failed, err != nil)
		}
		return failed
	}
	half := sandbox.FaultRule{Kind: sandbox.FaultSystemError, Probability: 0.5}
	first, again := run(42, half), run(42, half)
	if !slices.Equal(first, again) {
		t.Fatalf("seed 42 gave\n%v\nthen\n%v", first, again)
	}
	n := 0
	for _, f := range first {
		if f {
			n++
		}
	}
	if n == 0 || n == len(first) {
		t.Errorf("probability 0.5 failed %d of %d requests", n, len(first))
	}
	if fired := e.sb.Faults().Rules[0].Fired; fired != n {
		t.Errorf("fired %d, failed %d", fired, n)
	}

	// Count caps a probability rule.
	capped := run(7, sandbox.FaultRule{Kind: sandbox.FaultSystemError, Probability: 0.9, Count: 3})
	if got := len(slices.DeleteFunc(capped, func(b bool) bool { return !b })); got != 3 {
		t.Errorf("probability 0.9 capped at 3 fired %d times", got)
	}
}

func TestFaultsControlAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF70", "oFault7", e.sinkURL)
	status, out := e.control(t, http.MethodPost, "/sandbox/v1/faults", map[string]any{
		"seed": 3,
		"rules": []map[string]any{
			{"kind": "system_error", "method": "POST", "path": transactionsV3, "count": 1},
			{"kind": "reorder_notifications", "count": 4},
		},
	})
	if status != http.StatusOK {
		t.Fatalf("POST faults: %d %v", status, out)
	}
	rules, _ := out["rules"].([]any)
	if len(rules) != 2 || out["seed"] != 3.0 || out["injected"] != 0.0 {
		t.Fatalf("POST faults answered %v", out)
	}
	if r := rules[1].(map[string]any); r["batch"] != 4.0 || r["hold_ms"] != 1000.0 {
		t.Errorf("reorder defaults %v", r)
	}
	_, err := e.deduct(t, e.deductBody(c.ContractID, "F700", e.sinkURL))
	apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)

	status, out = e.control(t, http.MethodGet, "/sandbox/v1/faults", nil)
	log, _ := out["log"].([]any)
	if status != http.StatusOK || out["injected"] != 1.0 || len(log) != 1 ||
		log[0].(map[string]any)["kind"] != "system_error" || out["counts"].(map[string]any)["system_error"] != 1.0 {
		t.Fatalf("GET faults: %d %v", status, out)
	}
	if r := out["rules"].([]any)[0].(map[string]any); r["fired"] != 1.0 {
		t.Errorf("rule %v", r)
	}

	status, out = e.control(t, http.MethodDelete, "/sandbox/v1/faults", nil)
	if rules, _ := out["rules"].([]any); status != http.StatusOK || len(rules) != 0 || out["injected"] != 1.0 {
		t.Fatalf("DELETE faults: %d %v", status, out)
	}
	e.mustDeduct(t, e.deductBody(c.ContractID, "F700", e.sinkURL))

	for name, body := range map[string]any{
		"unknown kind":      map[string]any{"rules": []map[string]any{{"kind": "explode", "count": 1}}},
		"unknown field":     map[string]any{"rules": []map[string]any{{"kind": "system_error", "count": 1, "paht": "/"}}},
		"neither":           map[string]any{"rules": []map[string]any{{"kind": "system_error"}}},
		"probability > 1":   map[string]any{"rules": []map[string]any{{"kind": "rate_limit", "probability": 1.5}}},
		"latency w/o delay": map[string]any{"rules": []map[string]any{{"kind": "latency", "count": 1}}},
		"event on API":      map[string]any{"rules": []map[string]any{{"kind": "system_error", "count": 1, "event_type": "PAPAY.SIGN"}}},
		"path on notify":    map[string]any{"rules": []map[string]any{{"kind": "lose_attempt", "count": 1, "path": "/"}}},
		"batch of one":      map[string]any{"rules": []map[string]any{{"kind": "reorder_notifications", "count": 1}}},
		"relative path":     map[string]any{"rules": []map[string]any{{"kind": "system_error", "count": 1, "path_prefix": "v3"}}},
	} {
		if status, out := e.control(t, http.MethodPost, "/sandbox/v1/faults", body); status != http.StatusBadRequest ||
			out["code"] != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if err := e.sb.SetFaults(sandbox.Faults{Rules: []sandbox.FaultRule{{Kind: "nope", Count: 1}}}); !errors.Is(err, sandbox.ErrInvalidFaults) {
		t.Errorf("SetFaults(invalid) = %v", err)
	}
}

// signFor pre-signs and signs a contract whose PAPAY.SIGN goes to url.
func (e *env) signFor(t *testing.T, i int, url string) sandbox.Contract {
	t.Helper()
	return e.signedContract(t, fmt.Sprintf("CN%03d", i), fmt.Sprintf("oNotify%03d", i), url)
}

func TestNotificationLoseAttempt(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultLoseAttempt, EventType: sandbox.EventSign, Count: 2})
	c := e.signFor(t, 0, recv.URL)
	n := recv.next(t)
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	log := e.sb.Deliveries()
	if len(log) != 3 || n.content["contract_id"] != c.ContractID {
		t.Fatalf("deliveries %+v", log)
	}
	for i, d := range log {
		lost := i < 2
		if d.NotificationID != n.req.ID || d.Attempt != i+1 || d.Delivered == lost || d.Final == lost ||
			(d.Fault == sandbox.FaultLoseAttempt) != lost || (d.Error != "") != lost {
			t.Errorf("attempt %d: %+v", i+1, d)
		}
	}
	if extra := recv.drain(); len(extra) != 0 {
		t.Errorf("%d more notifications received", len(extra))
	}
	if ev := e.sb.FaultLog(); len(ev) != 2 || ev[1].Attempt != 2 || ev[1].NotificationID != n.req.ID {
		t.Errorf("fault log %+v", ev)
	}
}

func TestNotificationDrop(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultDropNotification, Count: 1})
	dropped := e.signFor(t, 0, recv.URL)
	sent := e.signFor(t, 1, recv.URL)
	if n := recv.next(t); n.content["contract_id"] != sent.ContractID {
		t.Errorf("received %v, want %s", n.content["contract_id"], sent.ContractID)
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if extra := recv.drain(); len(extra) != 0 {
		t.Errorf("the dropped notification (%s) arrived: %v", dropped.ContractID, extra[0].content)
	}
	log := e.sb.Deliveries()
	if len(log) != 2 || log[0].Attempt != 0 || !log[0].Final || log[0].Delivered ||
		log[0].Fault != sandbox.FaultDropNotification || !log[1].Delivered {
		t.Errorf("deliveries %+v", log)
	}
	if ev := e.sb.FaultLog(); len(ev) != 1 || ev[0].NotificationID != log[0].NotificationID || ev[0].EventType != sandbox.EventSign {
		t.Errorf("fault log %+v", ev)
	}
}

func TestNotificationDuplicate(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	c := e.signedContract(t, "CF80", "oFault8", e.sinkURL)
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultDuplicateNotification, EventType: sandbox.EventTransactionSuccess, Count: 1})
	e.mustDeduct(t, e.deductBody(c.ContractID, "F800", recv.URL))
	a, b := recv.next(t), recv.next(t)
	if a.req.ID != b.req.ID || a.content["out_trade_no"] != "F800" || b.content["out_trade_no"] != "F800" {
		t.Errorf("received %s %v and %s %v", a.req.ID, a.content["out_trade_no"], b.req.ID, b.content["out_trade_no"])
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	tx := e.transactionDeliveries()
	if len(tx) != 2 || !tx[0].Delivered || !tx[1].Delivered ||
		(tx[0].Fault == sandbox.FaultDuplicateNotification) == (tx[1].Fault == sandbox.FaultDuplicateNotification) {
		t.Errorf("deliveries %+v", tx)
	}
	if o := e.order(t, "F800"); o.Deductions != 1 {
		t.Errorf("a duplicated notification is not a second deduction: %+v", o)
	}
}

func TestNotificationReorder(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})

	// A full batch of three is released at once, newest first.
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultReorderNotifications, Count: 3, HoldMS: 60_000})
	var want []any
	for i := range 3 {
		want = append([]any{e.signFor(t, i, recv.URL).ContractID}, want...)
	}
	var got []any
	for range 3 {
		got = append(got, recv.next(t).content["contract_id"])
	}
	if !slices.Equal(got, want) {
		t.Errorf("received %v, want %v (reversed)", got, want)
	}

	// A batch that does not fill is released after hold_ms.
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultReorderNotifications, Count: 2, Batch: 5, HoldMS: 100})
	start := time.Now()
	first, second := e.signFor(t, 10, recv.URL), e.signFor(t, 11, recv.URL)
	if n := recv.next(t); n.content["contract_id"] != second.ContractID {
		t.Errorf("first received %v, want %s", n.content["contract_id"], second.ContractID)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("released after %v, want the 100ms hold", took)
	}
	if n := recv.next(t); n.content["contract_id"] != first.ContractID {
		t.Errorf("then received %v, want %s", n.content["contract_id"], first.ContractID)
	}
	// Later notifications are not held.
	third := e.signFor(t, 12, recv.URL)
	if n := recv.next(t); n.content["contract_id"] != third.ContractID {
		t.Errorf("received %v", n.content["contract_id"])
	}
	if got := e.sb.FaultCounts()[sandbox.FaultReorderNotifications]; got != 5 {
		t.Errorf("%d reorder faults, want 5", got)
	}
}

func TestNotificationDelay(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	e.setFaults(t, 0, sandbox.FaultRule{Kind: sandbox.FaultDelayNotification, Count: 1, DelayMS: 300})
	start := time.Now()
	c := e.signFor(t, 0, recv.URL)
	if n := recv.next(t); n.content["contract_id"] != c.ContractID || n.at.Sub(start) < 300*time.Millisecond {
		t.Errorf("received %v after %v, want after 300ms", n.content["contract_id"], n.at.Sub(start))
	}
	if ev := e.sb.FaultLog(); len(ev) != 1 || ev[0].Kind != sandbox.FaultDelayNotification || ev[0].DelayMS != 300 {
		t.Errorf("fault log %+v", ev)
	}
}

// TestNotificationFaultsStopOnClose: held and delayed notifications do not outlive Close.
func TestNotificationFaultsStopOnClose(t *testing.T) {
	t.Parallel()
	creds := testCredentials(t)
	recv := newReceiver(t, creds, certVerifier(creds))
	e := newEnv(t, sandbox.Options{})
	e.setFaults(t, 0,
		sandbox.FaultRule{Kind: sandbox.FaultReorderNotifications, Count: 1, Batch: 2, HoldMS: 60_000},
		sandbox.FaultRule{Kind: sandbox.FaultDelayNotification, Probability: 1, DelayMS: 60_000},
		sandbox.FaultRule{Kind: sandbox.FaultDuplicateNotification, Probability: 1},
	)
	e.signFor(t, 0, recv.URL)
	e.signFor(t, 1, recv.URL)
	done := make(chan struct{})
	go func() { e.sb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Close blocked on held notifications")
	}
	if err := e.sb.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if len(recv.drain()) != 0 || len(e.sb.Deliveries()) != 0 {
		t.Error("a held notification was delivered")
	}
}
