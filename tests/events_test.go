package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	papayv1 "github.com/papayd/papayd/gen/papay/v1"
)

// evts is p's EventService client.
func (p *papayd) evts() papayv1.EventServiceClient { return papayv1.NewEventServiceClient(p.conn) }

// allEvents pages through ListEvents after after and checks the pages
// rise: ids unique, sequences strictly rising.
func allEvents(t *testing.T, ev papayv1.EventServiceClient, after uint64) []*papayv1.Event {
	t.Helper()
	var out []*papayv1.Event
	for {
		resp, err := ev.ListEvents(context.Background(), &papayv1.ListEventsRequest{AfterSequence: after, PageSize: 100})
		if err != nil {
			t.Fatalf("ListEvents(after %d): %v", after, err)
		}
		out = append(out, resp.GetEvents()...)
		if len(resp.GetEvents()) == 0 {
			break
		}
		after = resp.GetNextAfterSequence()
	}
	checkRising(t, out)
	return out
}

// checkRising fails unless es's sequences strictly rise and its ids are
// unique.
func checkRising(t *testing.T, es []*papayv1.Event) {
	t.Helper()
	ids := map[string]bool{}
	for i, e := range es {
		if ids[e.GetId()] {
			t.Fatalf("event %s seen twice", e.GetId())
		}
		ids[e.GetId()] = true
		if i > 0 && e.GetSequence() <= es[i-1].GetSequence() {
			t.Fatalf("sequence %d after %d", e.GetSequence(), es[i-1].GetSequence())
		}
	}
}

// eventLog follows p's outbox: next returns the events appended since the
// last call.
type eventLog struct {
	t    *testing.T
	p    *papayd
	last uint64
}

func (l *eventLog) next() []*papayv1.Event {
	l.t.Helper()
	es := allEvents(l.t, l.p.evts(), l.last)
	if len(es) > 0 {
		l.last = es[len(es)-1].GetSequence()
	}
	return es
}

// expect reads the new events and checks their types.
func (l *eventLog) expect(what string, types ...string) []*papayv1.Event {
	l.t.Helper()
	es := l.next()
	got := make([]string, len(es))
	for i, e := range es {
		got[i] = e.GetType()
	}
	if diff := cmp.Diff(types, got, cmpEmpty); diff != "" {
		l.t.Fatalf("%s: event types (-want +got):\n%s", what, diff)
	}
	return es
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

// sameRecord fails unless the snapshot equals the record read by Get.
func sameRecord(t *testing.T, what string, snapshot, record proto.Message, opts ...cmp.Option) {
	t.Helper()
	if diff := cmp.Diff(record, snapshot, append(opts, protocmp.Transform())...); diff != "" {
		t.Fatalf("%s: the event's snapshot differs from the record (-record +snapshot):\n%s", what, diff)
	}
}

func TestEventsForEveryTransition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("sign, charge, replays, terminate", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		l := &eventLog{t: t, p: p}
		pre := presign(t, p, "oEv-1")
		code := pre.GetAgreement().GetOutContractCode()
		es := l.expect("presign", "agreement.created")
		// Presign writes the session after the created row, in its own
		// transaction and without a change of state: no event, a later
		// update_time.
		sameRecord(t, "agreement.created", es[0].GetAgreement(), getByCode(t, p, code),
			protocmp.IgnoreFields(&papayv1.Agreement{}, "update_time"))
		if es[0].GetSubMchid() != pre.GetAgreement().GetSubMchid() || es[0].GetId() == "" || es[0].GetCreateTime() == nil {
			t.Fatalf("event %v", es[0])
		}
		p.userSigns(pre.GetSessionId(), nil)
		a := waitState(t, p, code, papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
		eventually(t, "PAPAY.SIGN recorded", func() bool { return len(p.notificationsFor(code)) == 1 })
		es = l.expect("sign", "agreement.signed")
		sameRecord(t, "agreement.signed", es[0].GetAgreement(), a)

		// A synchronous success appends created and succeeded.
		c := createCharge(t, p, chargeReq("EV-OK", a.GetContractId(), 8800))
		eventually(t, "TRANSACTION.SUCCESS recorded", func() bool { return len(p.notificationsAbout("EV-OK")) == 1 })
		es = l.expect("charge", "charge.created", "charge.succeeded")
		if s := es[0].GetCharge().GetState(); s != papayv1.ChargeState_CHARGE_STATE_PENDING {
			t.Fatalf("charge.created snapshot in %v", s)
		}
		sameRecord(t, "charge.succeeded", es[1].GetCharge(), getCharge(t, p, "EV-OK", false))
		sameRecord(t, "charge.succeeded", es[1].GetCharge(), c)

		// Replayed RPCs, a refresh that changes nothing, a duplicate
		// PAPAY.SIGN and a replayed TRANSACTION.SUCCESS append nothing.
		createCharge(t, p, chargeReq("EV-OK", a.GetContractId(), 8800))
		getCharge(t, p, "EV-OK", true)
		if _, err := p.agreements.GetAgreement(ctx, &papayv1.GetAgreementRequest{OutContractCode: code, PlanId: planID, Refresh: true}); err != nil {
			t.Fatal(err)
		}
		o, _ := p.app.Sandbox().Order("EV-OK")
		h, body, err := p.app.Sandbox().BuildNotification("TRANSACTION.SUCCESS", "EV-replayed", o.Resource())
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if status, _ := p.postNotification(h, body); status != http.StatusOK {
				t.Fatalf("replayed notification: HTTP %d", status)
			}
		}
		l.expect("replays")

		term, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "events"})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "PAPAY.TERMINATE recorded", func() bool { return len(p.notificationsFor(code)) == 2 })
		if _, err := p.agreements.TerminateAgreement(ctx, &papayv1.TerminateAgreementRequest{ContractId: a.GetContractId(), TerminationNote: "events"}); err != nil {
			t.Fatal(err)
		}
		es = l.expect("terminate, PAPAY.TERMINATE, terminate again", "agreement.terminated")
		// PAPAY.TERMINATE may beat the RPC's write (see TestSigningFlowGRPC):
		// then the event is the notification's and the note came after.
		if got := es[0].GetAgreement(); got.GetState() != term.GetAgreement().GetState() || got.GetContractId() != a.GetContractId() {
			t.Fatalf("agreement.terminated snapshot %v", got)
		}
	})

	t.Run("insufficient balance", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		a := signed(t, p, "oEv-poor")
		l := &eventLog{t: t, p: p}
		l.next()
		p.configurePayer("oEv-poor", map[string]any{"behavior": "INSUFFICIENT_BALANCE"})
		c := createCharge(t, p, chargeReq("EV-POOR", a.GetContractId(), 5000))
		es := l.expect("refusal", "charge.created", "charge.failed")
		sameRecord(t, "charge.failed", es[1].GetCharge(), c)
		createCharge(t, p, chargeReq("EV-POOR", a.GetContractId(), 5000))
		l.expect("replayed refusal")
	})

	t.Run("USERPAYING then settled", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		a := signed(t, p, "oEv-slow")
		l := &eventLog{t: t, p: p}
		l.next()
		p.configurePayer("oEv-slow", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 2000}) // long enough to read the first events under load
		c := createCharge(t, p, chargeReq("EV-SLOW", a.GetContractId(), 2500))
		if c.GetState() != papayv1.ChargeState_CHARGE_STATE_PROCESSING {
			t.Fatalf("charge %v", c)
		}
		es := l.expect("USERPAYING", "charge.created", "charge.processing")
		sameRecord(t, "charge.processing", es[1].GetCharge(), getCharge(t, p, "EV-SLOW", false))
		done := waitCharge(t, p, "EV-SLOW", papayv1.ChargeState_CHARGE_STATE_SUCCEEDED)
		es = l.expect("settled", "charge.succeeded")
		sameRecord(t, "charge.succeeded", es[0].GetCharge(), done)
	})

	t.Run("close", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		a := signed(t, p, "oEv-close")
		p.configurePayer("oEv-close", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 60000})
		createCharge(t, p, chargeReq("EV-CLOSE", a.GetContractId(), 100))
		l := &eventLog{t: t, p: p}
		l.next()
		resp, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: "EV-CLOSE"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.charges.CloseCharge(ctx, &papayv1.CloseChargeRequest{OutTradeNo: "EV-CLOSE"}); err != nil {
			t.Fatal(err)
		}
		es := l.expect("close (CLOSING appends none), close again", "charge.closed")
		sameRecord(t, "charge.closed", es[0].GetCharge(), resp.GetCharge())
	})

	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		p := startWith(t, "", map[string]string{
			"PAPAYD_RECONCILE_INTERVAL": "50ms", "PAPAYD_RECONCILE_FIRST_CHECK": "100ms", "PAPAYD_RECONCILE_TIME_SCALE": "0.001"})
		l := &eventLog{t: t, p: p}
		exp, err := p.agreements.CreatePresignSession(ctx, &papayv1.CreatePresignSessionRequest{PlanId: planID, Openid: "oEv-exp",
			SessionExpireTime: timestampIn(2500 * time.Millisecond)}) // whole seconds at WeChat: 1.5 s to 2.5 s
		if err != nil {
			t.Fatal(err)
		}
		got := waitState(t, p, exp.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_EXPIRED)
		es := l.expect("unsigned session ended", "agreement.created", "agreement.expired")
		sameRecord(t, "agreement.expired", es[1].GetAgreement(), got)
	})

	t.Run("anomaly, then duplicates", func(t *testing.T) {
		t.Parallel()
		p := start(t, "")
		a := signed(t, p, "oEv-anomaly")
		p.configurePayer("oEv-anomaly", map[string]any{"behavior": "USERPAYING", "settle_after_ms": 60000})
		createCharge(t, p, chargeReq("EV-ANOM", a.GetContractId(), 1000))
		l := &eventLog{t: t, p: p}
		l.next()
		o, _ := p.app.Sandbox().Order("EV-ANOM")
		res := o.Resource()
		res.TradeState, res.TradeStateDesc = "SUCCESS", "paid"
		res.Amount.Total = 1
		h, body, err := p.app.Sandbox().BuildNotification("TRANSACTION.SUCCESS", "EV-anomaly-1", res)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if status, _ := p.postNotification(h, body); status != http.StatusOK {
				t.Fatalf("HTTP %d", status)
			}
		}
		es := l.expect("mismatching notification, twice", "anomaly.detected")
		an := es[0].GetAnomaly()
		if an.GetKind() != "MISMATCH" || an.GetOutTradeNo() != "EV-ANOM" || an.GetNotificationId() != "EV-anomaly-1" || es[0].GetSubMchid() != a.GetSubMchid() {
			t.Fatalf("anomaly.detected %v", es[0])
		}
		res.Amount.Total = 1000
		h, body, err = p.app.Sandbox().BuildNotification("TRANSACTION.SUCCESS", "EV-good-1", res)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if status, _ := p.postNotification(h, body); status != http.StatusOK {
				t.Fatalf("HTTP %d", status)
			}
		}
		es = l.expect("good notification, three times", "charge.succeeded")
		sameRecord(t, "charge.succeeded", es[0].GetCharge(), getCharge(t, p, "EV-ANOM", false))
	})
}

// restEvents is GET path decoded as a ListEventsResponse.
func restEvents(t *testing.T, p *papayd, path string) *papayv1.ListEventsResponse {
	t.Helper()
	var raw json.RawMessage
	if code := p.do(http.MethodGet, path, nil, &raw); code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", path, code, raw)
	}
	var out papayv1.ListEventsResponse
	if err := protojson.Unmarshal(raw, &out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return &out
}

func TestEventsOverREST(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	a := signed(t, p, "oEv-rest")
	for i := range 3 {
		createCharge(t, p, chargeReq(fmt.Sprintf("EV-REST-%d", i), a.GetContractId(), 100))
	}
	all := allEvents(t, p.evts(), 0)
	if len(all) != 2+3*2 {
		t.Fatalf("%d events", len(all))
	}
	// Pages of 3 after a cursor, through to the end.
	var paged []*papayv1.Event
	after := uint64(0)
	for {
		page := restEvents(t, p, fmt.Sprintf("/v1/events?after_sequence=%d&page_size=3", after))
		if len(page.GetEvents()) > 3 {
			t.Fatalf("page of %d", len(page.GetEvents()))
		}
		if len(page.GetEvents()) == 0 {
			if page.GetNextAfterSequence() != after {
				t.Fatalf("empty page moved the cursor %d -> %d", after, page.GetNextAfterSequence())
			}
			break
		}
		paged = append(paged, page.GetEvents()...)
		after = page.GetNextAfterSequence()
	}
	if diff := cmp.Diff(all, paged, protocmp.Transform()); diff != "" {
		t.Fatalf("REST pages differ from ListEvents (-grpc +rest):\n%s", diff)
	}
	// Types filter, repeated, after a cursor.
	q := url.Values{"types": {"charge.succeeded", "agreement.signed"}, "after_sequence": {fmt.Sprint(all[0].GetSequence())}}
	got := restEvents(t, p, "/v1/events?"+q.Encode()).GetEvents()
	var want []*papayv1.Event
	for _, e := range all[1:] {
		if e.GetType() == "charge.succeeded" || e.GetType() == "agreement.signed" {
			want = append(want, e)
		}
	}
	if len(want) != 4 {
		t.Fatalf("want 4 filtered events, have %d", len(want))
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Fatalf("types filter (-want +got):\n%s", diff)
	}
	// One by id; an unknown id is 404 EVENT_NOT_FOUND; an unknown type is 400.
	var one json.RawMessage
	if code := p.do(http.MethodGet, "/v1/events/"+all[3].GetId(), nil, &one); code != http.StatusOK {
		t.Fatalf("GET /v1/events/{id}: HTTP %d", code)
	}
	var single papayv1.GetEventResponse
	if err := protojson.Unmarshal(one, &single); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all[3], single.GetEvent(), protocmp.Transform()); diff != "" {
		t.Fatalf("GET by id (-list +get):\n%s", diff)
	}
	var e restError
	if code := p.do(http.MethodGet, "/v1/events/evt_nosuchevent", nil, &e); code != http.StatusNotFound || e.reason() != "EVENT_NOT_FOUND" {
		t.Fatalf("unknown id: HTTP %d %+v", code, e)
	}
	if code := p.do(http.MethodGet, "/v1/events?types=charge.exploded", nil, nil); code != http.StatusBadRequest {
		t.Fatalf("unknown type: HTTP %d", code)
	}
}

// streamFrom opens StreamEvents after after.
func streamFrom(ctx context.Context, t *testing.T, p *papayd, after uint64) papayv1.EventService_StreamEventsClient {
	t.Helper()
	s, err := p.evts().StreamEvents(ctx, &papayv1.StreamEventsRequest{AfterSequence: after})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signedN signs n agreements and returns their contract ids.
func signedN(t *testing.T, p *papayd, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = signed(t, p, fmt.Sprintf("%s-%d", prefix, i)).GetContractId()
	}
	return ids
}

// TestStreamReconnectMissesNothing: a consumer reads a few events,
// disconnects, and reconnects with the last sequence it received, over and
// over, while a writer keeps charging: it sees every event once, in order.
func TestStreamReconnectMissesNothing(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	contract := signed(t, p, "oEv-reconnect").GetContractId()
	const charges = 30
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := range charges {
			if _, err := p.charges.CreateCharge(context.Background(), chargeReq(fmt.Sprintf("EV-RC-%d", i), contract, 100)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var seen []*papayv1.Event
	want := 2 + 2*charges
	for round := 0; len(seen) < want; round++ {
		if round > 10*want {
			t.Fatalf("only %d of %d events after %d reconnects", len(seen), want, round)
		}
		after := uint64(0)
		if len(seen) > 0 {
			after = seen[len(seen)-1].GetSequence()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s := streamFrom(ctx, t, p, after)
		for range 1 + round%4 { // 1 to 4 events per connection
			r, err := s.Recv()
			if err != nil {
				cancel()
				t.Fatalf("Recv after %d: %v", after, err)
			}
			seen = append(seen, r.GetEvent())
			if len(seen) == want {
				break
			}
		}
		cancel()
	}
	<-writerDone
	checkRising(t, seen)
	if diff := cmp.Diff(allEvents(t, p.evts(), 0), seen, protocmp.Transform()); diff != "" {
		t.Fatalf("reconnecting consumer differs from ListEvents (-list +stream):\n%s", diff)
	}
}

// TestStreamUnderConcurrentWriters: 8 writers charge at once; a live
// reader sees every sequence once, in order: exactly what ListEvents
// returns afterwards.
func TestStreamUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	p := start(t, "")
	const writers, each = 8, 12
	contracts := signedN(t, p, "oEv-conc", writers)
	base := allEvents(t, p.evts(), 0)
	from := base[len(base)-1].GetSequence()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := streamFrom(ctx, t, p, from)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := p.charges.CreateCharge(ctx, chargeReq(fmt.Sprintf("EV-W%d-%d", w, i), contracts[w], 100)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var seen []*papayv1.Event
	for len(seen) < writers*each*2 {
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(seen), err)
		}
		seen = append(seen, r.GetEvent())
	}
	wg.Wait()
	checkRising(t, seen)
	if diff := cmp.Diff(allEvents(t, p.evts(), from), seen, protocmp.Transform()); diff != "" {
		t.Fatalf("live reader differs from ListEvents (-list +stream):\n%s", diff)
	}
	// Nothing more arrives: no event is sent twice.
	more := make(chan error, 1)
	go func() {
		r, err := s.Recv()
		if err == nil {
			err = fmt.Errorf("extra event %v", r.GetEvent())
		}
		more <- err
	}()
	select {
	case err := <-more:
		t.Fatal(err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-more; err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("after cancel: %v", err)
	}
}

// chargeEventState is the state a charge event's snapshot must be in.
var chargeEventState = map[string]papayv1.ChargeState{
	"charge.created":    papayv1.ChargeState_CHARGE_STATE_PENDING,
	"charge.processing": papayv1.ChargeState_CHARGE_STATE_PROCESSING,
	"charge.succeeded":  papayv1.ChargeState_CHARGE_STATE_SUCCEEDED,
	"charge.failed":     papayv1.ChargeState_CHARGE_STATE_FAILED,
	"charge.closed":     papayv1.ChargeState_CHARGE_STATE_CLOSED,
}

// listAllCharges pages through ListCharges.
func listAllCharges(t *testing.T, charges papayv1.ChargeServiceClient) map[string]*papayv1.Charge {
	t.Helper()
	out := map[string]*papayv1.Charge{}
	token := ""
	for {
		resp, err := charges.ListCharges(context.Background(), &papayv1.ListChargesRequest{PageSize: 500, PageToken: token})
		if err != nil {
			t.Fatalf("ListCharges: %v", err)
		}
		for _, c := range resp.GetCharges() {
			out[c.GetOutTradeNo()] = c
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// replayCharges checks that events replay charges exactly: per charge, the
// events about it start with charge.created, each is a change of state
// whose snapshot is in the state its type names, and the last one's state
// is the charge's recorded state; no event is about a charge not
// recorded. It returns the mismatches found.
func replayCharges(es []*papayv1.Event, charges map[string]*papayv1.Charge) []string {
	var bad []string
	byNo := map[string][]*papayv1.Event{}
	for _, e := range es {
		if c := e.GetCharge(); c != nil {
			byNo[c.GetOutTradeNo()] = append(byNo[c.GetOutTradeNo()], e)
		}
	}
	for no, evs := range byNo {
		if _, ok := charges[no]; !ok {
			bad = append(bad, fmt.Sprintf("%s: %d events, no charge", no, len(evs)))
		}
	}
	for no, c := range charges {
		evs := byNo[no]
		if len(evs) == 0 {
			bad = append(bad, fmt.Sprintf("%s: %v, no event", no, c.GetState()))
			continue
		}
		for i, e := range evs {
			if want, ok := chargeEventState[e.GetType()]; !ok || e.GetCharge().GetState() != want {
				bad = append(bad, fmt.Sprintf("%s: %s with a snapshot in %v", no, e.GetType(), e.GetCharge().GetState()))
			}
			if (i == 0) != (e.GetType() == "charge.created") || (i > 0 && e.GetCharge().GetState() == evs[i-1].GetCharge().GetState()) {
				bad = append(bad, fmt.Sprintf("%s: %s at %d of %d", no, e.GetType(), i, len(evs)))
			}
		}
		if last := evs[len(evs)-1].GetCharge().GetState(); last != c.GetState() {
			bad = append(bad, fmt.Sprintf("%s: last event in %v, charge in %v", no, last, c.GetState()))
		}
	}
	slices.Sort(bad)
	return bad
}

// TestEventsSurviveSIGKILL: papayd as a process is killed with SIGKILL in
// the middle of a burst of charges and restarted. Afterwards every charge
// has its events, every event its charge, and each charge's last event is
// in the charge's recorded state: a state change and its event commit
// together or not at all.
func TestEventsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds papayd")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "papayd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/papayd/papayd/cmd/papayd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	httpAddr, grpcAddr := freePort(t), freePort(t)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "papayd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	proc := &soakProcess{t: t, bin: bin, http: httpAddr, log: logFile, notifyURLs: []string{"http://" + httpAddr + "/wechatpay/notify"},
		env: append(os.Environ(), "PAPAYD_GRPC_ADDR="+grpcAddr, "PAPAYD_HTTP_ADDR="+httpAddr, "PAPAYD_ADMIN_ADDR=",
			"PAPAYD_DATA_DIR="+t.TempDir(), "PAPAYD_SANDBOX_TIME_SCALE=0.0001", "PAPAYD_LOG_LEVEL=warn",
			"PAPAYD_RECONCILE_INTERVAL=50ms", "PAPAYD_RECONCILE_FIRST_CHECK=100ms", "PAPAYD_RECONCILE_TIME_SCALE=0.001")}
	proc.start()
	defer proc.kill()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := &papayd{t: t, conn: conn, base: "http://" + httpAddr, http: &http.Client{Timeout: 10 * time.Second},
		agreements: papayv1.NewAgreementServiceClient(conn), charges: papayv1.NewChargeServiceClient(conn)}

	behaviors := []map[string]any{{"behavior": "SUCCEED"}, {"behavior": "SUCCEED"},
		{"behavior": "USERPAYING", "settle_after_ms": 100}, {"behavior": "INSUFFICIENT_BALANCE"}}
	contracts := make([]string, len(behaviors))
	for i, b := range behaviors {
		openid := fmt.Sprintf("oEv-kill-%d", i)
		pre := presign(t, p, openid)
		contracts[i] = p.userSigns(pre.GetSessionId(), nil)
		waitState(t, p, pre.GetAgreement().GetOutContractCode(), papayv1.AgreementState_AGREEMENT_STATE_SIGNED)
		p.configurePayer(openid, b)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for w, contract := range contracts {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := p.charges.CreateCharge(ctx, chargeReq(fmt.Sprintf("EV-KILL-%d-%d", w, i), contract, 100))
				cancel()
				if err == nil {
					mu.Lock()
					answered++
					mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond) // papayd is down
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	proc.kill()
	time.Sleep(100 * time.Millisecond)
	proc.start()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.evts().ListEvents(ctx, &papayv1.ListEventsRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("papayd not back: %v", err)
	}

	// Let the reconciler finish the charges the kill left open, then read
	// until two rounds agree (nothing moved in between).
	var charges map[string]*papayv1.Charge
	var es []*papayv1.Event
	deadline := time.Now().Add(10 * time.Second)
	for {
		es = allEvents(t, p.evts(), 0)
		charges = listAllCharges(t, p.charges)
		open := 0
		for _, c := range charges {
			if s := c.GetState(); s == papayv1.ChargeState_CHARGE_STATE_PENDING || s == papayv1.ChargeState_CHARGE_STATE_PROCESSING ||
				s == papayv1.ChargeState_CHARGE_STATE_CLOSING {
				open++
			}
		}
		again := allEvents(t, p.evts(), 0)
		if (open == 0 && len(again) == len(es)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d charges (%d answered), %d events", len(charges), answered, len(es))
	if answered == 0 || len(charges) < answered {
		t.Fatalf("%d charges recorded, %d answered", len(charges), answered)
	}
	for _, m := range replayCharges(es, charges) {
		t.Error(m)
	}
}

// TestOpenStreamDoesNotHoldShutdown: a consumer following StreamEvents does
// not hold papayd's graceful stop to its deadline; its stream ends
// UNAVAILABLE (SHUTTING_DOWN), to be resumed from its last sequence.
func TestOpenStreamDoesNotHoldShutdown(t *testing.T) {
	t.Parallel()
	p := startWith(t, "", map[string]string{"PAPAYD_SHUTDOWN_TIMEOUT": "60s"})
	signed(t, p, "oEv-shutdown")
	conn, err := grpc.NewClient(p.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := papayv1.NewEventServiceClient(conn).StreamEvents(t.Context(), &papayv1.StreamEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil { // the stream is open: it replays
		t.Fatal(err)
	}
	begin := time.Now()
	p.stop()
	if took := time.Since(begin); took > 12*time.Second { // p.stop gives up at 15 s
		t.Errorf("papayd took %v to stop with a stream open (shutdown timeout 60s)", took)
	}
	for {
		_, err := s.Recv()
		if err == nil {
			continue // the rest of the replay
		}
		if code, reason, _ := statusDetails(err); code != codes.Unavailable || reason != "SHUTTING_DOWN" {
			t.Errorf("the stream ended with %v (reason %q), want UNAVAILABLE SHUTTING_DOWN", err, reason)
		}
		break
	}
}
