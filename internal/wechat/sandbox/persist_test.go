package sandbox_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/wechat/sandbox"
)

// flakyReceiver answers 500 to every notification until accept is set, then 200; it
// keeps the ids it acknowledged.
type flakyReceiver struct {
	URL    string
	accept atomic.Bool
	mu     sync.Mutex
	failed int
	acked  []string
}

func newFlakyReceiver(t *testing.T) *flakyReceiver {
	t.Helper()
	f := &flakyReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n sandbox.Notification
		_ = json.NewDecoder(r.Body).Decode(&n)
		f.mu.Lock()
		defer f.mu.Unlock()
		if !f.accept.Load() {
			f.failed++
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		f.acked = append(f.acked, n.ID)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/flaky/notify"
	return f
}

func (f *flakyReceiver) counts() (failed int, acked []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed, append([]string(nil), f.acked...)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deliveredTo counts the acknowledged notifications of eventType to url.
func deliveredTo(sb *sandbox.Sandbox, url, eventType string) int {
	n := 0
	for _, d := range sb.Deliveries() {
		if d.URL == url && d.EventType == eventType && d.Delivered {
			n++
		}
	}
	return n
}

// sameTime compares times by instant: the state file does not keep monotonic readings
// or *time.Location pointers.
var sameTime = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// TestStateSurvivesRestart: contracts, a pending session, orders (paid, USERPAYING due
// later), refunds (settled, PROCESSING due later), a payer's balance and a notification
// whose delivery keeps failing are all there after Close and New on the same file; the
// pending work completes after the restart, and new ids do not reuse old ones.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sandbox", "state.json")
	opts := sandbox.Options{StateFile: path, TimeScale: 0.001} // retries after 15 ms to 3.6 s
	const settle = 4000                                        // ms, real time: after the restart
	e := newEnv(t, opts)
	flaky := newFlakyReceiver(t)

	a := e.signedContract(t, "CLPERSIST-A", "oPersistA", e.sinkURL)
	e.configure(t, a.OpenID, sandbox.PayerConfig{Balance: ptr[int64](50000)})
	paid := e.mustDeduct(t, e.deductBody(a.ContractID, "PERSIST-PAID", e.sinkURL))
	e.mustRefund(t, e.refundBody("PERSIST-PAID", "PERSIST-R1", 2000, e.sinkURL))

	b := e.signedContract(t, "CLPERSIST-B", "oPersistB", e.sinkURL)
	e.configure(t, b.OpenID, sandbox.PayerConfig{Behavior: sandbox.BehaviorUserPaying, SettleAfterMS: settle})
	paying := e.mustDeduct(t, e.deductBody(b.ContractID, "PERSIST-PAYING", e.sinkURL))
	if paying.TradeState != sandbox.TradeUserPaying {
		t.Fatalf("PERSIST-PAYING is %s", paying.TradeState)
	}

	c := e.signedContract(t, "CLPERSIST-C", "oPersistC", e.sinkURL)
	e.configure(t, c.OpenID, sandbox.PayerConfig{RefundBehavior: sandbox.RefundBehaviorProcessing, RefundSettleAfterMS: settle})
	e.mustDeduct(t, e.deductBody(c.ContractID, "PERSIST-REFUNDED", e.sinkURL))
	processing := e.mustRefund(t, e.refundBody("PERSIST-REFUNDED", "PERSIST-R2", 3000, e.sinkURL))

	// A session the user has not signed yet.
	session := e.presign(t, "miniprogram", e.presignBody("CLPERSIST-S", "oPersistS", e.sinkURL))

	// A TRANSACTION.SUCCESS the merchant keeps refusing.
	failing := e.mustDeduct(t, e.deductBody(a.ContractID, "PERSIST-NOTIFY", flaky.URL))
	// The receiver counts an attempt as it arrives, before the simulator
	// has logged the delivery: wait for both.
	var pendingID string
	waitFor(t, "a failed attempt, logged", func() bool {
		for _, d := range e.sb.Deliveries() {
			if d.URL == flaky.URL {
				pendingID = d.NotificationID
			}
		}
		n, _ := flaky.counts()
		return n >= 1 && pendingID != ""
	})

	before := struct {
		contracts []sandbox.Contract
		orders    []sandbox.Order
		refunds   []sandbox.Refund
		payer     sandbox.Payer
		queried   map[string]sandbox.TransactionResource
		refund    sandbox.RefundQueried
	}{e.sb.Contracts(), e.sb.Orders(), e.sb.Refunds(), e.sb.Payer(a.OpenID), map[string]sandbox.TransactionResource{},
		e.mustQueryRefund(t, "/out-refund-no/PERSIST-R1")}
	for _, no := range []string{"PERSIST-PAID", "PERSIST-PAYING", "PERSIST-REFUNDED", "PERSIST-NOTIFY"} {
		before.queried[no] = e.queryByNo(t, no)
	}
	if o := e.order(t, "PERSIST-PAYING"); o.TradeState != sandbox.TradeUserPaying {
		t.Fatalf("PERSIST-PAYING settled before the restart (%s): the machine is too slow for this test", o.TradeState)
	}
	if r := e.ledgerRefund(t, "PERSIST-R2"); r.Status != sandbox.RefundProcessing {
		t.Fatalf("PERSIST-R2 settled before the restart (%s): the machine is too slow for this test", r.Status)
	}
	e.sb.Close()
	sentBefore := deliveredTo(e.sb, e.sinkURL, sandbox.EventTransactionSuccess)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi, err)
	}

	e2 := newEnv(t, opts)
	if diff := cmp.Diff(before.contracts, e2.sb.Contracts(), sameTime); diff != "" {
		t.Errorf("contracts after the restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.refunds, e2.sb.Refunds(), sameTime, cmp.AllowUnexported(sandbox.Refund{})); diff != "" {
		t.Errorf("refunds after the restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.payer, e2.sb.Payer(a.OpenID)); diff != "" {
		t.Errorf("payer after the restart (-before +after):\n%s", diff)
	}
	for no, want := range before.queried {
		if diff := cmp.Diff(want, e2.queryByNo(t, no)); diff != "" {
			t.Errorf("query of %s after the restart (-before +after):\n%s", no, diff)
		}
	}
	if diff := cmp.Diff(before.refund, e2.mustQueryRefund(t, "/out-refund-no/PERSIST-R1")); diff != "" {
		t.Errorf("query of PERSIST-R1 after the restart (-before +after):\n%s", diff)
	}
	ledger := e2.sb.Orders()
	if len(ledger) != len(before.orders) {
		t.Fatalf("%d orders after the restart, %d before", len(ledger), len(before.orders))
	}
	for i, o := range ledger {
		if o.OutTradeNo != before.orders[i].OutTradeNo || o.TransactionID != before.orders[i].TransactionID ||
			o.Deductions != before.orders[i].Deductions || o.Refunded != before.orders[i].Refunded {
			t.Errorf("ledger entry %d: %+v, before %+v", i, o, before.orders[i])
		}
	}

	// The pending work completes: the settlements at their due time, the notification
	// once the merchant accepts it, under its id.
	waitFor(t, "PERSIST-PAYING to settle", func() bool { return e2.order(t, "PERSIST-PAYING").TradeState == sandbox.TradeSuccess })
	if o := e2.order(t, "PERSIST-PAYING"); o.Deductions != 1 {
		t.Errorf("PERSIST-PAYING deducted %d times", o.Deductions)
	}
	waitFor(t, "PERSIST-R2 to settle", func() bool { return e2.ledgerRefund(t, "PERSIST-R2").Status == sandbox.RefundSuccess })
	flaky.accept.Store(true)
	waitFor(t, "the pending notification", func() bool {
		_, acked := flaky.counts()
		return len(acked) > 0
	})
	if _, acked := flaky.counts(); acked[0] != pendingID {
		t.Errorf("acknowledged %v, want the pending notification %s", acked, pendingID)
	}
	waitFor(t, "TRANSACTION.SUCCESS of the order settled after the restart", func() bool {
		return deliveredTo(e2.sb, e.sinkURL, sandbox.EventTransactionSuccess) > sentBefore
	})

	// A replay after the restart answers the order as it stands: no second deduction.
	if again := e2.mustDeduct(t, e2.deductBody(a.ContractID, "PERSIST-PAID", e.sinkURL)); again.TransactionID != paid.TransactionID {
		t.Errorf("replay after the restart: %s, want %s", again.TransactionID, paid.TransactionID)
	}
	if o := e2.order(t, "PERSIST-PAID"); o.Deductions != 1 || o.Requests != 2 {
		t.Errorf("PERSIST-PAID after a replay: deductions %d, requests %d", o.Deductions, o.Requests)
	}

	// The session from before the restart can be signed; new ids are new.
	d, err := e2.sb.SignSession(session, sandbox.User{})
	if err != nil {
		t.Fatalf("sign a session from before the restart: %v", err)
	}
	for _, old := range before.contracts {
		if old.ContractID == d.ContractID {
			t.Errorf("contract id %s reused", d.ContractID)
		}
	}
	fresh := e2.mustDeduct(t, e2.deductBody(d.ContractID, "PERSIST-AFTER", e.sinkURL))
	refunded := e2.mustRefund(t, e2.refundBody("PERSIST-AFTER", "PERSIST-R3", 100, e.sinkURL))
	for _, o := range before.orders {
		if o.TransactionID == fresh.TransactionID {
			t.Errorf("transaction id %s reused", fresh.TransactionID)
		}
	}
	if refunded.ID == processing.ID || refunded.ID == before.refund.ID {
		t.Errorf("refund id %s reused", refunded.ID)
	}
	if failing.TransactionID == fresh.TransactionID {
		t.Errorf("transaction id %s reused", fresh.TransactionID)
	}
}

// TestStateSavedBeforeAnswer: a deduction is in the state file when its answer
// arrives, without Close.
func TestStateSavedBeforeAnswer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, sandbox.Options{StateFile: path})
	c := e.signedContract(t, "CLDURABLE", "oDurable", e.sinkURL)
	tx := e.mustDeduct(t, e.deductBody(c.ContractID, "DURABLE-1", e.sinkURL))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Orders []sandbox.Order `json:"orders"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Orders) != 1 || doc.Orders[0].TransactionID != tx.TransactionID ||
		doc.Orders[0].TradeState != sandbox.TradeSuccess || doc.Orders[0].Deductions != 1 {
		t.Fatalf("orders in the state file: %+v", doc.Orders)
	}
}

// TestStateAfterClose: after Close a change can no longer be saved, so the API answers
// it 500 SYSTEM_ERROR (the merchant retries) and the restarted sandbox does not have it.
func TestStateAfterClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	opts := sandbox.Options{StateFile: path}
	e := newEnv(t, opts)
	c := e.signedContract(t, "CLCLOSED", "oClosed", e.sinkURL)
	e.sb.Close()
	_, err := e.deduct(t, e.deductBody(c.ContractID, "CLOSED-1", e.sinkURL))
	apiError(t, err, http.StatusInternalServerError, sandbox.CodeSystemError)
	if _, err := e.queryTx(t, "/out-trade-no/CLOSED-1?sub_mchid="+e.creds.SubMchID); err != nil {
		t.Fatalf("a query after Close: %v", err) // reads still answer
	}
	e2 := newEnv(t, opts)
	if _, ok := e2.sb.Order("CLOSED-1"); ok {
		t.Error("the order refused after Close is in the restarted sandbox")
	}
	if _, ok := e2.sb.Contract(c.ContractID); !ok {
		t.Error("the contract signed before Close is not in the restarted sandbox")
	}
	e2.mustDeduct(t, e2.deductBody(c.ContractID, "CLOSED-1", e.sinkURL)) // the retry
}

// TestStateFileShared: a second sandbox on a state file another one holds loads it
// but never writes it, even after the first closed: its changes are answered
// SYSTEM_ERROR and the file stays the first one's.
func TestStateFileShared(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	e := newEnv(t, sandbox.Options{StateFile: path})
	id := e.presign(t, "miniprogram", e.presignBody("CLSHARED-1", "oShared1", e.sinkURL))
	e2 := newEnv(t, sandbox.Options{StateFile: path})
	if _, ok := e2.sb.Session(id); !ok {
		t.Error("the second sandbox did not load the state file")
	}
	presign := func() error {
		_, err := e2.client.Post(t.Context(), e2.apiURL+contractsV3+"/miniprogram-pre-entrust-sign",
			e2.presignBody("CLSHARED-2", "oShared2", e2.sinkURL))
		return err
	}
	apiError(t, presign(), http.StatusInternalServerError, sandbox.CodeSystemError)
	e.signedContract(t, "CLSHARED-3", "oShared3", e.sinkURL)
	e.sb.Close()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	apiError(t, presign(), http.StatusInternalServerError, sandbox.CodeSystemError)
	e2.sb.Close()
	if got, _ := os.ReadFile(path); string(got) != string(want) {
		t.Error("the second sandbox wrote the state file")
	}
	e3 := newEnv(t, sandbox.Options{StateFile: path})
	if n := len(e3.sb.Contracts()); n != 1 {
		t.Errorf("%d contracts, want the first sandbox's one", n)
	}
	e3.presign(t, "miniprogram", e3.presignBody("CLSHARED-4", "oShared4", e3.sinkURL))
}

// TestStateFileRefused: a corrupt, truncated, foreign or unreadable state file is an
// error at New that names the file, and the file is left as it was.
func TestStateFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	e := newEnv(t, sandbox.Options{StateFile: good})
	e.signedContract(t, "CLREFUSED", "oRefused", e.sinkURL)
	e.sb.Close()
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	other := *e.creds
	other.MchID = "1900000999"
	for _, tc := range []struct {
		name  string
		data  []byte
		creds *sandbox.Credentials
		want  string
	}{
		{"truncated", raw[:len(raw)/2], e.creds, "corrupt"},
		{"empty", nil, e.creds, "corrupt"},
		{"garbage", []byte("not json"), e.creds, "corrupt"},
		{"version", []byte(`{"version": 99}`), e.creds, "version 99"},
		{"other merchant", raw, &other, "belongs to sp_mchid"},
	} {
		path := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		sb, err := sandbox.New(sandbox.Options{Credentials: tc.creds, StateFile: path})
		if err == nil {
			sb.Close()
			t.Errorf("%s: New succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %q and the path", tc.name, err, tc.want)
		}
		if after, _ := os.ReadFile(path); string(after) != string(tc.data) {
			t.Errorf("%s: the file was changed", tc.name)
		}
	}
	// The good file still loads.
	sb, err := sandbox.New(sandbox.Options{Credentials: e.creds, StateFile: good})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if n := len(sb.Contracts()); n != 1 {
		t.Errorf("%d contracts", n)
	}
}
