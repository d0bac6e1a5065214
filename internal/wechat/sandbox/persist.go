package sandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// stateVersion is the format of the state file.
const stateVersion = 1

// Timing of the background saver: it saves once a change has rested this long, and
// looks for changes no broadcast announced (DeclineSession, ConfigurePayer called in
// Go) this often.
const (
	saveCoalesce = 100 * time.Millisecond
	saveSweep    = 2 * time.Second
)

// errStateClosed is the error of a save after Close.
var errStateClosed = errors.New("sandbox: closed: the state file is no longer written")

// errStateBusy is the error of a save by a sandbox that found its state file locked by
// another at New.
var errStateBusy = errors.New("sandbox: the state file is in use by another sandbox")

// stateStore keeps the sandbox's state in Options.StateFile.
type stateStore struct {
	path string
	// unlock releases the state file's lock, taken at New; nil when another sandbox
	// held it then (busy) or after Close.
	unlock func()
	busy   bool // another sandbox holds the file: this one never writes it

	// Guarded by Sandbox.mu: the real (wall-clock) times pending work is due, which
	// only the timers know otherwise.
	orderDue  map[orderKey]time.Time     // USERPAYING orders: settlement
	refundDue map[refundKey]time.Time    // PROCESSING refunds: settlement
	pending   map[string]*pendingMessage // notifications not yet acknowledged or given up, by id

	mu     sync.Mutex
	cond   sync.Cond
	asked  uint64 // saves asked for
	done   uint64 // saves asked for up to done are written (or failed with err)
	saving bool
	err    error
	last   []byte // what the file holds: written by the saving caller only
	closed bool
}

// pendingMessage is a notification still to be delivered: Attempt is the next attempt
// (1-based), due at Due (real time).
type pendingMessage struct {
	ID        string    `json:"id"`
	EventType string    `json:"event_type"`
	URL       string    `json:"url"`
	Body      []byte    `json:"body"`
	Attempt   int       `json:"attempt"`
	Due       time.Time `json:"due"`
}

// stateDoc is the JSON of the state file.
type stateDoc struct {
	Version        int                    `json:"version"`
	SPMchID        string                 `json:"sp_mchid"`
	Sessions       []*Session             `json:"sessions"`
	Contracts      []*contractRecord      `json:"contracts"`
	Orders         []*orderRecord         `json:"orders"`
	Refunds        []*refundRecord        `json:"refunds"`
	RefundRefusals []refusalRecord        `json:"refund_refusals,omitempty"`
	Payers         map[string]PayerConfig `json:"payers"`
	Deliveries     []Delivery             `json:"deliveries"`
	Pending        []*pendingMessage      `json:"pending_notifications"`
}

// contractRecord stores a Contract with full-precision times (Contract.MarshalJSON
// writes the API's view).
type contractRecord Contract

// orderRecord is an order with what its timers and the refund spacing need.
type orderRecord struct {
	Order
	SettleDue  time.Time `json:"settle_due,omitzero"`
	LastRefund time.Time `json:"last_refund,omitzero"`
}

// refundRecord is a refund with the due time of its settlement.
type refundRecord struct {
	Refund
	SettleDue time.Time `json:"settle_due,omitzero"`
}

// refusalRecord counts the NOT_ENOUGH refusals of one out_refund_no.
type refusalRecord struct {
	SubMchID    string `json:"sub_mchid"`
	OutRefundNo string `json:"out_refund_no"`
	Count       int    `json:"count"`
}

// openState loads the state path holds (if the file exists), re-arms the settlements
// and deliveries it had pending, and starts the background saver.
func (s *Sandbox) openState(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sandbox: state file %s: %w", path, err)
	}
	st := &stateStore{path: path, orderDue: map[orderKey]time.Time{},
		refundDue: map[refundKey]time.Time{}, pending: map[string]*pendingMessage{}}
	st.cond.L = &st.mu
	unlock, err := lockStateFile(path + ".lock")
	switch {
	case errors.Is(err, errStateBusy):
		st.busy = true
		s.log.Warn("sandbox: the state file is in use by another sandbox: loaded, but this one's changes will not be saved",
			slog.String("file", path))
	case err != nil:
		return fmt.Errorf("sandbox: state file %s: %w", path, err)
	default:
		st.unlock = unlock
	}
	if err := s.loadState(st); err != nil {
		if st.unlock != nil {
			st.unlock()
		}
		return err
	}
	s.wg.Add(1)
	go s.saveLoop()
	return nil
}

// loadState reads st.path, if it exists, into the new sandbox and re-arms its pending
// work (unless the file is busy: the sandbox holding it does that work).
func (s *Sandbox) loadState(st *stateStore) error {
	path := st.path
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("sandbox: state file %s: %w", path, err)
	default:
		var doc stateDoc
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("sandbox: state file %s is corrupt (%v); move it aside or delete it to start with an empty sandbox", path, err)
		}
		if err := s.checkState(&doc); err != nil {
			return fmt.Errorf("sandbox: state file %s: %w; move it aside or delete it to start with an empty sandbox", path, err)
		}
		s.mu.Lock()
		s.restoreLocked(st, &doc)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store = st
	if st.last, err = marshalJSON(s.stateLocked()); err != nil {
		s.store = nil
		return fmt.Errorf("sandbox: state file %s: %w", path, err)
	}
	if !st.busy {
		s.rearmLocked()
	}
	return nil
}

// checkState refuses a state file of another format or another merchant.
func (s *Sandbox) checkState(doc *stateDoc) error {
	switch {
	case doc.Version != stateVersion:
		return fmt.Errorf("version %d, want %d", doc.Version, stateVersion)
	case doc.SPMchID != s.creds.MchID:
		return fmt.Errorf("it belongs to sp_mchid %q, the credentials are of %q", doc.SPMchID, s.creds.MchID)
	}
	for _, r := range doc.Refunds {
		if !slices.ContainsFunc(doc.Orders, func(o *orderRecord) bool { return o.TransactionID == r.TransactionID }) {
			return fmt.Errorf("refund %s names an unknown transaction %s", r.OutRefundNo, r.TransactionID)
		}
	}
	return nil
}

// restoreLocked replaces the (empty) state of a new sandbox with doc's.
func (s *Sandbox) restoreLocked(st *stateStore, doc *stateDoc) {
	for _, sess := range doc.Sessions {
		s.sessions[sess.ID] = sess
	}
	for _, rec := range doc.Contracts {
		c := (*Contract)(rec)
		s.contracts[c.ContractID] = c
		s.contractList = append(s.contractList, c)
		s.byCode[codeKey{c.SubMchID, c.PlanID, c.OutContractCode}] = c.ContractID // the newest wins
	}
	for _, rec := range doc.Orders {
		o := &rec.Order
		s.orderSeq++
		o.seq, o.lastRefund, o.Refunds, o.Refunded = s.orderSeq, rec.LastRefund, 0, 0
		key := orderKey{o.SubMchID, o.OutTradeNo}
		s.orders[key], s.byTransaction[o.TransactionID] = o, o
		s.ledger = append(s.ledger, o)
		if o.TradeState == TradeUserPaying {
			st.orderDue[key] = rec.SettleDue
		}
	}
	for _, rec := range doc.Refunds {
		r := &rec.Refund
		s.refundSeq++
		r.seq = s.refundSeq
		key := refundKey{r.SubMchID, r.OutRefundNo}
		s.refunds[key], s.byRefundID[r.RefundID] = r, r
		o := s.byTransaction[r.TransactionID]
		s.refundsOf[o] = append(s.refundsOf[o], r)
		s.refundLedger = append(s.refundLedger, r)
		if r.Status == RefundProcessing {
			st.refundDue[key] = rec.SettleDue
		}
	}
	for _, f := range doc.RefundRefusals {
		s.refundRefusals[refundKey{f.SubMchID, f.OutRefundNo}] = f.Count
	}
	for openID, cfg := range doc.Payers {
		stored := cfg.clone()
		s.payers[openID] = &stored
	}
	s.deliveries = doc.Deliveries
	for _, p := range doc.Pending {
		st.pending[p.ID] = p
	}
}

// rearmLocked starts the timers of the restored state: the settlements of USERPAYING
// orders and PROCESSING refunds, and the deliveries of pending notifications, each at
// its stored due time (at once if that has passed).
func (s *Sandbox) rearmLocked() {
	st := s.store
	for key, due := range st.orderDue {
		s.settleLaterLocked(key, max(time.Until(due), 0))
	}
	for key, due := range st.refundDue {
		s.settleRefundLaterLocked(key, max(time.Until(due), 0))
	}
	for _, p := range st.pending {
		o := newOutgoing(p.ID, p.EventType, p.URL, p.Body)
		o.first = min(max(p.Attempt, 1), len(scheduleFor(p.EventType))+1)
		o.delay = max(time.Until(p.Due), 0)
		s.inflight++
		s.wg.Add(1)
		go s.deliver(o)
	}
	s.broadcastLocked()
}

// stateLocked copies the state for the file. Timer bookkeeping of orders and refunds
// that settled meanwhile is dropped.
func (s *Sandbox) stateLocked() *stateDoc {
	st := s.store
	doc := &stateDoc{Version: stateVersion, SPMchID: s.creds.MchID, Payers: map[string]PayerConfig{},
		Deliveries: slices.Clone(s.deliveries)}
	for _, sess := range s.sessions {
		c := *sess
		doc.Sessions = append(doc.Sessions, &c)
	}
	slices.SortFunc(doc.Sessions, func(a, b *Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	for _, c := range s.contractList {
		rec := contractRecord(*c)
		doc.Contracts = append(doc.Contracts, &rec)
	}
	for _, o := range s.ledger {
		rec := &orderRecord{Order: o.clone(), LastRefund: o.lastRefund.Round(0)}
		key := orderKey{o.SubMchID, o.OutTradeNo}
		if o.TradeState == TradeUserPaying {
			rec.SettleDue = st.orderDue[key]
		} else {
			delete(st.orderDue, key)
		}
		doc.Orders = append(doc.Orders, rec)
	}
	for _, r := range s.refundLedger {
		rec := &refundRecord{Refund: *r}
		key := refundKey{r.SubMchID, r.OutRefundNo}
		if r.Status == RefundProcessing {
			rec.SettleDue = st.refundDue[key]
		} else {
			delete(st.refundDue, key)
		}
		doc.Refunds = append(doc.Refunds, rec)
	}
	for key, n := range s.refundRefusals {
		doc.RefundRefusals = append(doc.RefundRefusals, refusalRecord{key.subMchID, key.outRefundNo, n})
	}
	slices.SortFunc(doc.RefundRefusals, func(a, b refusalRecord) int {
		return cmp.Or(cmp.Compare(a.SubMchID, b.SubMchID), cmp.Compare(a.OutRefundNo, b.OutRefundNo))
	})
	for openID, cfg := range s.payers {
		doc.Payers[openID] = cfg.clone()
	}
	for _, p := range st.pending {
		c := *p
		doc.Pending = append(doc.Pending, &c)
	}
	slices.SortFunc(doc.Pending, func(a, b *pendingMessage) int { return cmp.Compare(a.ID, b.ID) })
	return doc
}

// saveState makes the current state durable: when it returns nil, every change made
// before the call is in the file. Concurrent callers share saves (group commit). After
// Close it fails with errStateClosed unless there is nothing to save.
func (s *Sandbox) saveState() error {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	st.asked++
	want := st.asked
	for st.done < want {
		if st.saving {
			st.cond.Wait()
			continue
		}
		st.saving = true
		gen, closed := st.asked, st.closed
		st.mu.Unlock()
		err := s.writeState(closed)
		st.mu.Lock()
		st.saving = false
		st.done, st.err = gen, err
		st.cond.Broadcast()
	}
	return st.err
}

// writeState writes the state file if the state differs from what it holds: a
// temporary file, synced, renamed over it, and the directory synced. Only one call
// runs at a time (saveState).
func (s *Sandbox) writeState(closed bool) error {
	st := s.store
	s.mu.Lock()
	doc := s.stateLocked()
	s.mu.Unlock()
	raw, err := marshalJSON(doc)
	if err != nil {
		return fmt.Errorf("sandbox: state: %w", err)
	}
	if bytes.Equal(raw, st.last) {
		return nil
	}
	switch {
	case closed:
		return errStateClosed
	case st.busy:
		return errStateBusy
	}
	if err := writeFileDurable(st.path, raw); err != nil {
		return fmt.Errorf("sandbox: saving the state: %w", err)
	}
	st.last = raw
	return nil
}

// writeFileDurable replaces path with data (mode 0600): a reader sees the old file or
// the new one, and after a crash the file is one of them.
func writeFileDurable(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename: no such file
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// saveLoop saves what changes in the background (settlements, notification attempts,
// Go calls): after a broadcast, or every saveSweep, once saveCoalesce has passed. It
// ends when the sandbox closes; Close saves the rest.
func (s *Sandbox) saveLoop() {
	defer s.wg.Done()
	sweep := time.NewTicker(saveSweep)
	defer sweep.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-sweep.C:
		case <-s.ctx.Done():
			return
		}
		t := time.NewTimer(saveCoalesce)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
		if err := s.saveState(); err != nil {
			s.log.Error("sandbox: saving the state", slog.String("file", s.store.path), slog.Any("err", err))
		}
	}
}

// closeState saves the state a last time and releases the file; later saves fail with
// errStateClosed unless nothing changed.
func (s *Sandbox) closeState() {
	st := s.store
	if st == nil {
		return
	}
	if err := s.saveState(); err != nil {
		s.log.Error("sandbox: saving the state at close", slog.String("file", st.path), slog.Any("err", err))
	}
	st.mu.Lock()
	for st.saving {
		st.cond.Wait()
	}
	st.closed = true
	unlock := st.unlock
	st.unlock = nil
	st.mu.Unlock()
	if unlock != nil {
		unlock()
	}
}

// durableAPI makes a state-changing API request durable before it is answered: with a
// state file, a POST is answered only once the file holds its effect, or with 500
// SYSTEM_ERROR if it cannot be saved (the merchant retries with the same parameters,
// which WeChat Pay answers idempotently).
func (s *Sandbox) durableAPI(method string, buf *bufferedResponse) *bufferedResponse {
	if s.store == nil || method == http.MethodGet || method == http.MethodHead {
		return buf
	}
	if err := s.saveState(); err != nil {
		s.log.Error("sandbox: saving the state", slog.String("file", s.store.path), slog.Any("err", err))
		out := newBufferedResponse()
		writeAPIError(out, systemError("system error: the sandbox could not save its state; retry with the same parameters"))
		return out
	}
	return buf
}

// durableControl answers a state-changing control request (sign, terminate, configure,
// ...) only once the state file holds its effect, or 500 UNAVAILABLE.
func (s *Sandbox) durableControl(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.store == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		buf := newBufferedResponse()
		h.ServeHTTP(buf, r)
		if err := s.saveState(); err != nil {
			s.log.Error("sandbox: saving the state", slog.String("file", s.store.path), slog.Any("err", err))
			writeJSON(w, http.StatusInternalServerError, controlError{"UNAVAILABLE",
				"the sandbox could not save its state: " + err.Error()})
			return
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.WriteHeader(cmp.Or(buf.status, http.StatusOK))
		_, _ = io.Copy(w, &buf.body)
	})
}

// noteSettleLocked records when the settlement of a USERPAYING order is due.
func (s *Sandbox) noteSettleLocked(key orderKey, d time.Duration) {
	if s.store != nil {
		s.store.orderDue[key] = time.Now().Add(d)
	}
}

// noteRefundSettleLocked records when the settlement of a PROCESSING refund is due.
func (s *Sandbox) noteRefundSettleLocked(key refundKey, d time.Duration) {
	if s.store != nil {
		s.store.refundDue[key] = time.Now().Add(d)
	}
}

// notePendingLocked records a notification about to be delivered (first attempt due
// now) and reports whether the state file keeps it. Duplicate copies (fault injection)
// are not recorded: the original is.
func (s *Sandbox) notePendingLocked(id, eventType, url string, body []byte) bool {
	if s.store == nil {
		return false
	}
	s.store.pending[id] = &pendingMessage{ID: id, EventType: eventType, URL: url, Body: body,
		Attempt: 1, Due: time.Now()}
	return true
}

// noteAttempt records the outcome of attempt of o: the notification is done when final,
// else its next attempt is due after the schedule's delay.
func (s *Sandbox) noteAttempt(o *outgoing, attempt int, final bool) {
	if s.store == nil || o.fault != "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if final {
		delete(s.store.pending, o.id)
		return
	}
	if p := s.store.pending[o.id]; p != nil {
		p.Attempt, p.Due = attempt+1, time.Now().Add(s.scaled(scheduleFor(o.eventType)[attempt-1]))
	}
}
