package service

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// memStore is an in-memory Store: transactions work on a copy that replaces
// the original on commit.
type memStore struct {
	mu    sync.Mutex // serialises transactions
	state memState
	// failWrites, when set, fails every transaction (a full disk).
	failWrites error
	// keyReads counts Keys calls; failKeys, when set, fails them;
	// keysHook, when set, runs inside each (to hold a reload open).
	keyReads atomic.Int64
	failKeys error
	keysHook func()
	// committed is closed and replaced by a commit that appended events.
	committed chan struct{}
	leases    memLeases
	// runOnce, when set, makes InTx run fn once, as SQLite does; otherwise
	// it runs fn a first time on a transaction it aborts. runs counts the
	// runs of fn.
	runOnce bool
	runs    atomic.Int64
	// meanwhile, when set, changes the state between the aborted run and
	// the next one of the next InTx (the concurrent transaction that made
	// the first abort), then is cleared.
	meanwhile func(*memState)
}

type memState struct {
	agreements    map[string]Agreement
	notifications map[string]NotificationRecord
	charges       map[string]Charge
	refunds       map[string]Refund
	anomalies     []Anomaly
	audit         []AuditEntry
	intents       map[int64]Intent
	nextIntent    int64
	keys          map[string]StoredKey
	events        []Event
	prunedThrough uint64
	webhooks      memWebhooks
}

func newMemStore() *memStore {
	return &memStore{state: memState{agreements: map[string]Agreement{}, notifications: map[string]NotificationRecord{}, charges: map[string]Charge{}, refunds: map[string]Refund{}, intents: map[int64]Intent{}, keys: map[string]StoredKey{}}, committed: make(chan struct{})}
}

// InTx runs fn twice unless runOnce is set: first on a clone it then
// discards whatever fn returned (a transaction the database aborted for a
// concurrent one), then on a fresh clone it commits if fn returns nil. The
// error of the second run is what InTx returns.
func (m *memStore) InTx(ctx context.Context, fn func(Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrites != nil {
		return m.failWrites
	}
	if !m.runOnce {
		m.runs.Add(1)
		_ = fn(m.begin())
		if m.meanwhile != nil {
			m.meanwhile(&m.state)
			m.meanwhile = nil
		}
	}
	m.runs.Add(1)
	tx := m.begin()
	if err := fn(tx); err != nil {
		return err
	}
	appended := len(tx.events) > len(m.state.events)
	m.state = tx.memState
	if appended {
		close(m.committed)
		m.committed = make(chan struct{})
	}
	return nil
}

// beforeRerun sets meanwhile.
func (m *memStore) beforeRerun(fn func(*memState)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meanwhile = fn
}

// begin is a transaction on a copy of the state.
func (m *memStore) begin() *memTx {
	return &memTx{memState{agreements: maps.Clone(m.state.agreements), notifications: maps.Clone(m.state.notifications),
		charges: maps.Clone(m.state.charges), refunds: maps.Clone(m.state.refunds), anomalies: slices.Clone(m.state.anomalies), audit: slices.Clone(m.state.audit),
		intents: maps.Clone(m.state.intents), nextIntent: m.state.nextIntent, keys: maps.Clone(m.state.keys),
		events: slices.Clone(m.state.events), prunedThrough: m.state.prunedThrough,
		webhooks: m.state.webhooks.clone()}}
}

func (m *memStore) view() *memTx {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &memTx{m.state}
}

func (m *memStore) AgreementByOutContractCode(ctx context.Context, code string) (Agreement, error) {
	return m.view().AgreementByOutContractCode(ctx, code)
}

func (m *memStore) AgreementByContractID(ctx context.Context, id string) (Agreement, error) {
	return m.view().AgreementByContractID(ctx, id)
}

func (m *memStore) ListAgreements(ctx context.Context, f AgreementFilter) ([]Agreement, string, error) {
	return m.view().ListAgreements(ctx, f)
}

func (m *memStore) ChargeByOutTradeNo(ctx context.Context, no string) (Charge, error) {
	return m.view().ChargeByOutTradeNo(ctx, no)
}

func (m *memStore) ChargeByTransactionID(ctx context.Context, id string) (Charge, error) {
	return m.view().ChargeByTransactionID(ctx, id)
}

func (m *memStore) ListCharges(ctx context.Context, f ChargeFilter) ([]Charge, string, error) {
	return m.view().ListCharges(ctx, f)
}

func (m *memStore) DueCharges(_ context.Context, now time.Time, limit int) ([]Charge, error) {
	var out []Charge
	for _, c := range m.view().charges {
		if !c.NextCheckTime.IsZero() && !c.NextCheckTime.After(now) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NextCheckTime.Before(out[j].NextCheckTime) })
	return out[:min(limit, len(out))], nil
}

func (m *memStore) RefundByOutRefundNo(ctx context.Context, no string) (Refund, error) {
	return m.view().RefundByOutRefundNo(ctx, no)
}

func (m *memStore) RefundByRefundID(ctx context.Context, id string) (Refund, error) {
	return m.view().RefundByRefundID(ctx, id)
}

func (m *memStore) RefundsOfCharge(ctx context.Context, no string) ([]Refund, error) {
	return m.view().RefundsOfCharge(ctx, no)
}

func (m *memStore) ListRefunds(ctx context.Context, f RefundFilter) ([]Refund, string, error) {
	return m.view().ListRefunds(ctx, f)
}

func (m *memStore) DueRefunds(_ context.Context, now time.Time, limit int) ([]Refund, error) {
	var out []Refund
	for _, r := range m.view().refunds {
		if !r.NextCheckTime.IsZero() && !r.NextCheckTime.After(now) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Refund) int {
		if c := a.NextCheckTime.Compare(b.NextCheckTime); c != 0 {
			return c
		}
		return strings.Compare(a.OutRefundNo, b.OutRefundNo)
	})
	return out[:min(limit, len(out))], nil
}

func (m *memStore) DueAgreements(_ context.Context, now time.Time, limit int) ([]Agreement, error) {
	var out []Agreement
	for _, a := range m.view().agreements {
		if !a.NextCheckTime.IsZero() && !a.NextCheckTime.After(now) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NextCheckTime.Before(out[j].NextCheckTime) })
	return out[:min(limit, len(out))], nil
}

func (m *memStore) OpenIntents(context.Context) ([]Intent, error) {
	var out []Intent
	for _, in := range m.view().intents {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memStore) Ping(context.Context) error { return nil }

func (t *memTx) NotificationRecorded(_ context.Context, key NotificationKey) (bool, error) {
	_, ok := t.notifications[notificationKey(key)]
	return ok, nil
}

// notificationKey is the memStore's map key of a notification.
func notificationKey(k NotificationKey) string { return k.SpMchID + "/" + k.SubMchID + "/" + k.ID }

type memTx struct{ memState }

func (t *memTx) AgreementByOutContractCode(_ context.Context, code string) (Agreement, error) {
	a, ok := t.agreements[code]
	if !ok {
		return Agreement{}, ErrNotFound
	}
	return a, nil
}

func (t *memTx) AgreementByContractID(_ context.Context, id string) (Agreement, error) {
	for _, a := range t.agreements {
		if a.ContractID == id {
			return a, nil
		}
	}
	return Agreement{}, ErrNotFound
}

func (t *memTx) ListAgreements(_ context.Context, f AgreementFilter) ([]Agreement, string, error) {
	var out []Agreement
	for _, a := range t.agreements {
		if (f.OpenID == "" || a.OpenID == f.OpenID) && (f.PlanID == 0 || a.PlanID == f.PlanID) &&
			(f.State == "" || a.State == f.State) && inScope(a.SubMchID, f.SubMchID, f.SubMchIDs) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OutContractCode < out[j].OutContractCode })
	return out, "", nil
}

// inScope reports whether a row of sub-merchant id passes a list filter's
// sub_mchid (one) and allowed set (set): both, when given.
func inScope(id, one string, set []string) bool {
	return (one == "" || id == one) && (len(set) == 0 || slices.Contains(set, id))
}

func (t *memTx) CreateAgreement(_ context.Context, a Agreement) error {
	if _, ok := t.agreements[a.OutContractCode]; ok {
		return ErrConflict
	}
	t.agreements[a.OutContractCode] = a
	return nil
}

func (t *memTx) UpdateAgreement(_ context.Context, a Agreement) error {
	if _, ok := t.agreements[a.OutContractCode]; !ok {
		return ErrNotFound
	}
	t.agreements[a.OutContractCode] = a
	return nil
}

func (t *memTx) DeleteAgreement(_ context.Context, code string) error {
	if _, ok := t.agreements[code]; !ok {
		return ErrNotFound
	}
	delete(t.agreements, code)
	return nil
}

func (t *memTx) ChargeByOutTradeNo(_ context.Context, no string) (Charge, error) {
	c, ok := t.charges[no]
	if !ok {
		return Charge{}, ErrNotFound
	}
	return c, nil
}

func (t *memTx) ChargeByTransactionID(_ context.Context, id string) (Charge, error) {
	for _, c := range t.charges {
		if id != "" && c.TransactionID == id {
			return c, nil
		}
	}
	return Charge{}, ErrNotFound
}

func (t *memTx) ListCharges(_ context.Context, f ChargeFilter) ([]Charge, string, error) {
	var out []Charge
	for _, c := range t.charges {
		if (f.ContractID == "" || c.ContractID == f.ContractID) && (f.State == "" || c.State == f.State) &&
			inScope(c.SubMchID, f.SubMchID, f.SubMchIDs) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OutTradeNo < out[j].OutTradeNo })
	return out, "", nil
}

func (t *memTx) CreateCharge(_ context.Context, c Charge) error {
	if _, ok := t.charges[c.OutTradeNo]; ok {
		return ErrConflict
	}
	t.charges[c.OutTradeNo] = c
	return nil
}

func (t *memTx) UpdateCharge(_ context.Context, c Charge) error {
	if _, ok := t.charges[c.OutTradeNo]; !ok {
		return ErrNotFound
	}
	t.charges[c.OutTradeNo] = c
	return nil
}

func (t *memTx) RefundByOutRefundNo(_ context.Context, no string) (Refund, error) {
	r, ok := t.refunds[no]
	if !ok {
		return Refund{}, ErrNotFound
	}
	return r, nil
}

func (t *memTx) RefundByRefundID(_ context.Context, id string) (Refund, error) {
	for _, r := range t.refunds {
		if id != "" && r.RefundID == id {
			return r, nil
		}
	}
	return Refund{}, ErrNotFound
}

// RefundsOfCharge returns the charge's refunds oldest first (creation
// time, then out_refund_no).
func (t *memTx) RefundsOfCharge(_ context.Context, no string) ([]Refund, error) {
	var out []Refund
	for _, r := range t.refunds {
		if r.OutTradeNo == no {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, refundsOldestFirst)
	return out, nil
}

func refundsOldestFirst(a, b Refund) int {
	if c := a.CreateTime.Compare(b.CreateTime); c != 0 {
		return c
	}
	return strings.Compare(a.OutRefundNo, b.OutRefundNo)
}

// ListRefunds pages newest first. Its page token is the offset and the
// filter it was issued for: another filter's, or none of its, is
// ErrInvalidPageToken.
func (t *memTx) ListRefunds(_ context.Context, f RefundFilter) ([]Refund, string, error) {
	var out []Refund
	for _, r := range t.refunds {
		if (f.OutTradeNo == "" || r.OutTradeNo == f.OutTradeNo) && (f.State == "" || r.State == f.State) &&
			inScope(r.SubMchID, f.SubMchID, f.SubMchIDs) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Refund) int { return refundsOldestFirst(b, a) })
	bound := fmt.Sprintf("%s|%s|%s|%v|%d", f.OutTradeNo, f.State, f.SubMchID, f.SubMchIDs, f.PageSize)
	offset := 0
	if f.PageToken != "" {
		n, rest, ok := strings.Cut(f.PageToken, "@")
		if _, err := fmt.Sscan(n, &offset); !ok || err != nil || rest != bound || offset <= 0 || offset > len(out) {
			return nil, "", ErrInvalidPageToken
		}
	}
	out = out[offset:]
	next := ""
	if f.PageSize > 0 && len(out) > f.PageSize {
		out = out[:f.PageSize]
		next = fmt.Sprintf("%d@%s", offset+f.PageSize, bound)
	}
	return out, next, nil
}

func (t *memTx) CreateRefund(_ context.Context, r Refund) error {
	if _, ok := t.refunds[r.OutRefundNo]; ok {
		return ErrConflict
	}
	if _, err := t.RefundByRefundID(context.Background(), r.RefundID); err == nil {
		return ErrConflict
	}
	t.refunds[r.OutRefundNo] = r
	return nil
}

// UpdateRefund keeps the fields fixed at creation, as the store does.
func (t *memTx) UpdateRefund(_ context.Context, r Refund) error {
	old, ok := t.refunds[r.OutRefundNo]
	if !ok {
		return ErrNotFound
	}
	if o, err := t.RefundByRefundID(context.Background(), r.RefundID); err == nil && o.OutRefundNo != r.OutRefundNo {
		return ErrConflict
	}
	r.OutTradeNo, r.Merchant, r.Amount, r.Reason, r.NotifyURL, r.ChargeTotal, r.CreateTime =
		old.OutTradeNo, old.Merchant, old.Amount, old.Reason, old.NotifyURL, old.ChargeTotal, old.CreateTime
	t.refunds[r.OutRefundNo] = r
	return nil
}

func (t *memTx) InsertAnomaly(_ context.Context, a Anomaly) error {
	t.anomalies = append(t.anomalies, a)
	return nil
}

func (t *memTx) CreateIntent(_ context.Context, in Intent) (int64, error) {
	for _, o := range t.intents {
		if o.Kind == in.Kind && o.Key == in.Key {
			return 0, ErrConflict
		}
	}
	t.nextIntent++
	in.ID = t.nextIntent
	t.intents[in.ID] = in
	return in.ID, nil
}

func (t *memTx) DeleteIntent(_ context.Context, id int64) error {
	if _, ok := t.intents[id]; !ok {
		return ErrNotFound
	}
	delete(t.intents, id)
	return nil
}

func (t *memTx) InsertNotification(_ context.Context, n NotificationRecord) error {
	k := notificationKey(NotificationKey{SpMchID: n.SpMchID, SubMchID: n.SubMchID, ID: n.ID})
	if _, ok := t.notifications[k]; ok {
		return ErrConflict
	}
	t.notifications[k] = n
	return nil
}

func (m *memStore) Keys(context.Context) ([]StoredKey, error) {
	m.keyReads.Add(1)
	m.mu.Lock()
	hook, fail := m.keysHook, m.failKeys
	m.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail != nil {
		return nil, fail
	}
	keys := slices.Collect(maps.Values(m.view().keys))
	slices.SortFunc(keys, func(a, b StoredKey) int { return strings.Compare(a.ID, b.ID) })
	return keys, nil
}

func (m *memStore) TouchKey(_ context.Context, id string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.state.keys[id]; ok && t.After(k.LastUsedTime) {
		k.LastUsedTime = t
		m.state.keys = maps.Clone(m.state.keys) // views share the map
		m.state.keys[id] = k
	}
	return nil
}

func (t *memTx) CreateKey(_ context.Context, k StoredKey) error {
	if _, ok := t.keys[k.ID]; ok {
		return ErrConflict
	}
	t.keys[k.ID] = k
	return nil
}

func (t *memTx) RevokeKey(_ context.Context, id string, at time.Time) (APIKey, error) {
	k, ok := t.keys[id]
	if !ok {
		return APIKey{}, ErrNotFound
	}
	if k.RevokeTime.IsZero() {
		k.RevokeTime = at
		t.keys[id] = k
	}
	return k.APIKey, nil
}

// fakeWeChat answers from fields the test sets.
type fakeWeChat struct {
	mu         sync.Mutex
	presigns   []PresignRequest
	presignErr error
	contract   RemoteContract
	queryErr   error
	queryFn    func(ContractQuery) (RemoteContract, error) // overrides contract/queryErr
	terminates []TerminateRequest
	termErr    error
	termHook   func() // runs inside TerminateContract, after the fake's lock is released

	presignHook func() // runs first in Presign, outside the fake's lock

	deductions []TransactionRequest
	deduct     func(TransactionRequest) (RemoteTransaction, error) // default: SUCCESS
	order      RemoteTransaction
	orderErr   error
	orderFn    func(TransactionQuery) (RemoteTransaction, error) // overrides order/orderErr
	reverses   []string
	reverseErr error

	refunds       []RefundRequest
	refund        func(RefundRequest) (RemoteRefund, error) // default: accepted, without a status
	refundHook    func()                                    // runs first in CreateRefund, outside the fake's lock
	refundQueries []RefundQuery
	refundQueryFn func(RefundQuery) (RemoteRefund, error) // default: 404 RESOURCE_NOT_EXISTS
}

func (f *fakeWeChat) CreateRefund(_ context.Context, req RefundRequest) (RemoteRefund, error) {
	f.mu.Lock()
	hook := f.refundHook
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	f.refunds = append(f.refunds, req)
	fn := f.refund
	f.mu.Unlock()
	if fn != nil {
		return fn(req)
	}
	return acceptedRefund(req), nil
}

// acceptedRefund is WeChat's answer accepting req: no status, as the
// create answer may be.
func acceptedRefund(req RefundRequest) RemoteRefund {
	return RemoteRefund{RefundID: "R-" + req.OutRefundNo, OutRefundNo: req.OutRefundNo, Refund: req.Refund,
		Currency: req.Currency, PayerRefund: req.Refund, PayerCurrency: req.Currency}
}

func (f *fakeWeChat) QueryRefund(_ context.Context, q RefundQuery) (RemoteRefund, error) {
	f.mu.Lock()
	f.refundQueries = append(f.refundQueries, q)
	fn := f.refundQueryFn
	f.mu.Unlock()
	if fn != nil {
		return fn(q)
	}
	return RemoteRefund{}, &RemoteError{HTTPStatus: 404, Code: "RESOURCE_NOT_EXISTS"}
}

func (f *fakeWeChat) CreateTransaction(_ context.Context, req TransactionRequest) (RemoteTransaction, error) {
	f.mu.Lock()
	f.deductions = append(f.deductions, req)
	deduct := f.deduct
	f.mu.Unlock()
	if deduct != nil {
		return deduct(req)
	}
	return RemoteTransaction{OutTradeNo: req.OutTradeNo, TransactionID: "T-" + req.OutTradeNo, ContractID: req.ContractID,
		TradeState: TradeSuccess, Amount: req.Amount, PayerTotal: req.Amount.Total, PayerCurrency: req.Amount.Currency, BankType: "CFT"}, nil
}

func (f *fakeWeChat) QueryTransaction(_ context.Context, q TransactionQuery) (RemoteTransaction, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.orderFn != nil {
		return f.orderFn(q)
	}
	return f.order, f.orderErr
}

func (f *fakeWeChat) ReverseTransaction(_ context.Context, _, outTradeNo string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reverses = append(f.reverses, outTradeNo)
	return f.reverseErr
}

func (f *fakeWeChat) Presign(_ context.Context, req PresignRequest) (PresignResult, error) {
	f.mu.Lock()
	hook := f.presignHook
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.presigns = append(f.presigns, req)
	if f.presignErr != nil {
		return PresignResult{}, f.presignErr
	}
	return PresignResult{SessionID: fmt.Sprintf("session-%d", len(f.presigns))}, nil
}

func (f *fakeWeChat) QueryContract(_ context.Context, q ContractQuery) (RemoteContract, error) {
	f.mu.Lock()
	fn := f.queryFn
	f.mu.Unlock()
	if fn != nil {
		return fn(q)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.contract, f.queryErr
}

func (f *fakeWeChat) TerminateContract(_ context.Context, req TerminateRequest) error {
	f.mu.Lock()
	f.terminates = append(f.terminates, req)
	hook, err := f.termHook, f.termErr
	f.mu.Unlock()
	if hook != nil && err == nil {
		hook()
	}
	return err
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// seqIDs makes out_contract_codes in sequence.
type seqIDs struct {
	mu sync.Mutex
	n  int
}

func (s *seqIDs) NewOutContractCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return fmt.Sprintf("GEN%04d", s.n)
}

var (
	_ Store  = (*memStore)(nil)
	_ Tx     = (*memTx)(nil)
	_ WeChat = (*fakeWeChat)(nil)
)

func (t *memTx) InsertAuditEntry(_ context.Context, e AuditEntry) error {
	e.ID = int64(len(t.audit) + 1)
	t.audit = append(t.audit, e)
	return nil
}

// ListAuditEntries returns every matching entry, newest first, in one page.
func (m *memStore) ListAuditEntries(_ context.Context, f AuditFilter) ([]AuditEntry, string, error) {
	var out []AuditEntry
	for _, e := range slices.Backward(m.view().audit) {
		if (f.Resource == "" || e.Resource == f.Resource) && (f.KeyID == "" || e.KeyID == f.KeyID) {
			out = append(out, e)
		}
	}
	return out, "", nil
}

func (m *memStore) RecordAuditEntry(ctx context.Context, e AuditEntry, _ func(error)) error {
	return m.InTx(ctx, func(tx Tx) error { return tx.InsertAuditEntry(ctx, e) })
}

// memWebhooks holds the webhook endpoints and deliveries.
type memWebhooks struct {
	endpoints  map[string]StoredWebhookEndpoint
	order      []string // endpoint ids in creation order
	deliveries map[int64]WebhookDelivery
	next       int64
}

func (w memWebhooks) clone() memWebhooks {
	return memWebhooks{endpoints: maps.Clone(w.endpoints), order: slices.Clone(w.order),
		deliveries: maps.Clone(w.deliveries), next: w.next}
}

func (m *memStore) WebhookEndpoint(ctx context.Context, id string) (StoredWebhookEndpoint, error) {
	return m.view().WebhookEndpoint(ctx, id)
}

func (m *memStore) WebhookEndpoints(ctx context.Context) ([]StoredWebhookEndpoint, error) {
	return m.view().WebhookEndpoints(ctx)
}

func (m *memStore) ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error) {
	return m.view().ListWebhookDeliveries(ctx, f)
}

func (t *memTx) AppendEvent(_ context.Context, e Event) error {
	var last uint64
	if n := len(t.events); n > 0 {
		last = t.events[n-1].Sequence
	}
	e.Sequence = max(last, t.prunedThrough) + 1
	e.ID = fmt.Sprintf("evt_%d", e.Sequence)
	t.events = append(t.events, e)
	return nil
}

func (m *memStore) ListEvents(_ context.Context, f EventFilter) ([]Event, error) {
	v := m.view()
	if f.AfterSequence > 0 && f.AfterSequence < v.prunedThrough {
		return nil, ErrEventCursorExpired
	}
	var out []Event
	for _, e := range v.events {
		if e.Sequence <= f.AfterSequence || (len(f.Types) > 0 && !slices.Contains(f.Types, e.Type)) ||
			!inScope(e.SubMchID, f.SubMchID, f.SubMchIDs) {
			continue
		}
		if out = append(out, e); len(out) == f.PageSize {
			break
		}
	}
	return out, nil
}

func (t *memTx) WebhookEndpoint(_ context.Context, id string) (StoredWebhookEndpoint, error) {
	e, ok := t.webhooks.endpoints[id]
	if !ok {
		return e, ErrNotFound
	}
	return e, nil
}

func (t *memTx) WebhookEndpoints(context.Context) ([]StoredWebhookEndpoint, error) {
	var out []StoredWebhookEndpoint
	for _, id := range t.webhooks.order {
		out = append(out, t.webhooks.endpoints[id])
	}
	return out, nil
}

func (t *memTx) ListWebhookDeliveries(_ context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	for _, d := range t.webhooks.deliveries {
		if d.EventSequence > f.AfterSequence && (f.EndpointID == "" || d.EndpointID == f.EndpointID) &&
			(f.EventID == "" || d.EventID == f.EventID) && (f.State == "" || d.State == f.State) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b WebhookDelivery) int {
		if a.EventSequence != b.EventSequence {
			return cmpUint(a.EventSequence, b.EventSequence)
		}
		return strings.Compare(a.EndpointID, b.EndpointID)
	})
	if f.PageSize > 0 && len(out) > f.PageSize {
		out = out[:f.PageSize]
	}
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *memTx) CreateWebhookEndpoint(_ context.Context, e StoredWebhookEndpoint) error {
	if _, ok := t.webhooks.endpoints[e.ID]; ok {
		return ErrConflict
	}
	if t.webhooks.endpoints == nil {
		t.webhooks.endpoints = map[string]StoredWebhookEndpoint{}
	}
	t.webhooks.endpoints[e.ID] = e
	t.webhooks.order = append(t.webhooks.order, e.ID)
	return nil
}

func (t *memTx) UpdateWebhookEndpoint(_ context.Context, e WebhookEndpoint) error {
	old, ok := t.webhooks.endpoints[e.ID]
	if !ok {
		return ErrNotFound
	}
	old.State, old.DisableReason, old.Cursor, old.UpdateTime = e.State, e.DisableReason, e.Cursor, e.UpdateTime
	t.webhooks.endpoints[e.ID] = old
	return nil
}

func (t *memTx) CreateWebhookDelivery(_ context.Context, d WebhookDelivery) (int64, error) {
	for _, o := range t.webhooks.deliveries {
		if o.EndpointID == d.EndpointID && o.EventID == d.EventID {
			return 0, ErrConflict
		}
	}
	if t.webhooks.deliveries == nil {
		t.webhooks.deliveries = map[int64]WebhookDelivery{}
	}
	t.webhooks.next++
	d.ID = t.webhooks.next
	t.webhooks.deliveries[d.ID] = d
	return d.ID, nil
}

func (t *memTx) UpdateWebhookDelivery(_ context.Context, d WebhookDelivery) error {
	old, ok := t.webhooks.deliveries[d.ID]
	if !ok {
		return ErrNotFound
	}
	d.EndpointID, d.EventID, d.EventSequence, d.EventType, d.SubMchID, d.CreateTime =
		old.EndpointID, old.EventID, old.EventSequence, old.EventType, old.SubMchID, old.CreateTime
	t.webhooks.deliveries[d.ID] = d
	return nil
}

func (m *memStore) EventByID(_ context.Context, id string) (Event, error) {
	for _, e := range m.view().events {
		if e.ID == id {
			return e, nil
		}
	}
	return Event{}, ErrNotFound
}

func (m *memStore) EventsCommitted() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.committed
}

func (m *memStore) PruneEvents(_ context.Context, before time.Time, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for n < len(m.state.events) && n < limit && m.state.events[n].CreateTime.Before(before) {
		m.state.prunedThrough = m.state.events[n].Sequence
		n++
	}
	m.state.events = slices.Clone(m.state.events[n:])
	return n, nil
}
