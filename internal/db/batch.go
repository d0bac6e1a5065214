package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/papayd/papayd/internal/service"
)

// Group commit. Every write transaction is run by one writer goroutine,
// which owns the single writer connection. When several are waiting it runs
// them together: one BEGIN IMMEDIATE, each function inside its own
// SAVEPOINT (so an error or panic rolls back that function alone; the
// first one's is the transaction itself, see runTx), one COMMIT, one
// fsync. Each caller is answered only after that commit, with
// its own function's result: the semantics of one transaction per call,
// at the cost of one fsync per batch instead of per call. When the batch
// does not commit (BEGIN or COMMIT fails, SQLite rolls the transaction
// back), every caller is answered with that failure, whatever its function
// returned, since nothing it wrote or read of the others' writes counts.

// maxBatch bounds how many transactions share one commit.
const maxBatch = 128

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("database closed")

type txRequest struct {
	ctx  context.Context
	fn   func(*tx) error
	done chan txResult // buffered: the writer never waits on it
	// then, when set, is called by the writer with the outcome instead of
	// done: a request posted without a caller waiting for it.
	then func(error)
}

type txResult struct {
	err      error
	panicked bool
	panicVal any
}

// writer is the goroutine that runs write transactions in batches.
type writer struct {
	conn  *sql.DB // the single writer connection
	queue chan *txRequest

	// stmts are statements prepared on conn, by query text; pending are
	// queries first seen inside a batch, prepared once it ended (conn is
	// busy during a batch). Only the writer goroutine touches them.
	stmts   map[string]*sql.Stmt
	pending map[string]bool

	// caches are the DB's record caches; touched collects the records the
	// current batch wrote, forgotten again when it ends.
	caches  *caches
	touched touched

	// events is the outbox's watermark, readers' wake-up and recent
	// events; appended and through are the events the current batch's
	// committed functions appended and its highest sequence (event.go).
	events   *events
	appended []service.Event
	through  uint64

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	done   chan struct{}

	// observe, when set, is told each batch's size and how long it took
	// from BEGIN to the end of COMMIT (metrics).
	observe atomic.Pointer[func(transactions int, took time.Duration)]

	// failed is the last batch that did not commit: when (unix nanoseconds,
	// 0: never) and why. Readiness reads it: a small probe write may still
	// fit where real transactions no longer do (a nearly full disk).
	failedAt  atomic.Int64
	failedErr atomic.Pointer[error]
}

func newWriter(conn *sql.DB, c *caches, ev *events) *writer {
	w := &writer{conn: conn, caches: c, queue: make(chan *txRequest, maxBatch), done: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}, events: ev}
	go w.run()
	return w
}

// do runs fn in a write transaction, possibly batched with others, and
// returns its result after the commit. A panic in fn is re-raised here.
func (w *writer) do(ctx context.Context, fn func(*tx) error) error {
	req := &txRequest{ctx: ctx, fn: fn, done: make(chan txResult, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.queue <- req:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	// Once queued, wait for the outcome even if ctx ends: the function may
	// run and commit, and the caller must not be told otherwise.
	res := <-req.done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// post queues fn like do, but returns once it is queued, without waiting
// for its commit; then (which must not block) is called with the outcome
// after the batch that ran fn ended. Close runs everything queued.
func (w *writer) post(ctx context.Context, fn func(*tx) error, then func(error)) error {
	req := &txRequest{ctx: context.WithoutCancel(ctx), fn: fn, then: then}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the writer after the queued transactions have run.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	defer func() {
		for _, s := range w.stmts {
			_ = s.Close()
		}
	}()
	batch := make([]*txRequest, 0, maxBatch)
	for first := range w.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.runBatch(batch)
	}
}

// runBatch runs the batch in one transaction and answers every request.
func (w *writer) runBatch(batch []*txRequest) {
	defer w.preparePending()
	obs := w.observe.Load()
	var start time.Time
	if obs != nil {
		start = time.Now()
	}
	results := make([]txResult, len(batch))
	clear(w.appended) // the events are kept by events.recent, not here
	w.appended, w.through = w.appended[:0], 0
	err := w.runTx(batch, results)
	if obs != nil {
		(*obs)(len(batch), time.Since(start))
	}
	if err == nil && len(w.appended) > 0 {
		// Readers are woken after the commit and before any caller is
		// answered (the watermark was raised before it).
		w.events.published(w.through, w.appended)
	}
	if err != nil {
		w.failedErr.Store(&err)
		w.failedAt.Store(time.Now().UnixNano())
		// Nothing of the batch committed, so whatever a function returned
		// was decided on writes that are gone: an ErrConflict, or a
		// sentinel meaning "already recorded", may be about a row an
		// earlier function wrote in this very transaction. Every caller
		// gets the batch's failure instead. A panic is still re-raised in
		// its caller: its function's writes never commit either way, and
		// the panic is the clearer report of the bug.
		for i := range results {
			if !results[i].panicked {
				results[i].err = err
			}
		}
	}
	w.caches.forgetTouched(&w.touched)
	for i, r := range batch {
		if r.then == nil {
			r.done <- results[i]
			continue
		}
		err := results[i].err
		if results[i].panicked {
			err = fmt.Errorf("panic: %v", results[i].panicVal)
		}
		r.then(err)
	}
}

// errRolledBack: SQLite rolled the batch's transaction back on its own (an
// interrupted write, ON CONFLICT ROLLBACK, RAISE(ROLLBACK), a full disk, an
// I/O error), taking every function's writes before it with it.
var errRolledBack = errors.New("transaction rolled back by SQLite")

// runTx runs the batch's functions in one transaction, each inside its own
// savepoint, storing each one's result in results, and commits. It returns
// nil if the transaction committed (or no function ran), else why not.
//
// A function that runs while the transaction holds nothing yet (the
// batch's first, or the next after such a one failed) gets no savepoint:
// the transaction itself is its savepoint, rolled back and begun again
// when it fails. That spares the SAVEPOINT and RELEASE statements and the
// copies of the pages it changes into the sub-journal that a ROLLBACK TO
// would restore, for one function of every batch.
func (w *writer) runTx(batch []*txRequest, results []txResult) error {
	// The writer's own context, never a caller's: SQLite answers an
	// interrupted write by rolling back the whole transaction, so one
	// caller giving up must not interrupt a statement (see txQuerier).
	ctx := context.Background()
	conn, err := w.conn.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer conn.Close()
	q := &txQuerier{w: w, conn: conn}
	if err := conn.Raw(q.watchRollback); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := q.begin(); err != nil {
		return err
	}
	ran, empty := false, true // empty: the transaction holds no function's writes
	var through int64         // the highest event sequence of the committed functions
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i].err = err // gave up before it ran: nothing happens
			continue
		}
		if !empty {
			if _, err := q.ExecContext(ctx, "SAVEPOINT fn"); err != nil {
				_ = q.tx.Rollback()
				return fmt.Errorf("savepoint: %w", err)
			}
		}
		t := &tx{reader: reader{q: q}, caches: w.caches, touched: &w.touched}
		results[i] = runOne(r, t)
		ran = true
		end := q.endSavepoint
		if empty {
			end = q.endAlone
		}
		if err := end(results[i]); err != nil {
			_ = q.tx.Rollback()
			return err
		}
		if results[i].err == nil && !results[i].panicked {
			w.appended = append(w.appended, t.appended...)
			through = max(through, t.sequence)
			empty = false
		}
	}
	if !ran {
		_ = q.tx.Rollback()
		return nil
	}
	if len(w.appended) > 0 {
		w.through = uint64(through)
		// Admitted just before the commit, so that a reader that sees the
		// batch's writes also lists their events (after the commit a
		// reader of the state could find its event not listed yet). It
		// admits only this batch's sequences, above every committed one:
		// a reader before the commit lists what is committed, and can
		// still never be shown a sequence and later a lower one.
		w.events.admit(w.through)
	}
	if err := q.tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// runOne runs one request's function on t, catching a panic.
func runOne(r *txRequest, t *tx) (res txResult) {
	defer func() {
		if p := recover(); p != nil {
			res = txResult{panicked: true, panicVal: p}
		}
	}()
	return txResult{err: r.fn(t)}
}

// maxPrepared bounds the writer's prepared statements: queries built from
// what a function changes (updateChangedQuery) come in a few forms, but
// nothing proves there are few, and past the bound a query runs
// unprepared rather than holding memory for good.
const maxPrepared = 512

// preparePending prepares the queries first seen in the last batch, now
// that the connection is free.
func (w *writer) preparePending() {
	for query := range w.pending {
		delete(w.pending, query)
		if len(w.stmts) >= maxPrepared {
			continue
		}
		if s, err := w.conn.PrepareContext(context.Background(), query); err == nil {
			w.stmts[query] = s
		}
	}
}

// txQuerier runs a batch's statements through the writer's prepared
// statements (bound to the transaction), or unprepared the first time.
//
// A statement runs on the writer's context, not on the one its caller
// passes: the driver interrupts a statement whose context ends, and SQLite
// rolls back the whole transaction, every caller's writes, for an
// interrupted write. A statement that starts after its caller's context
// ended fails with the context's error instead of running, so that
// function fails and rolls back alone; one that is running completes.
//
// Once SQLite has rolled the transaction back, statements fail with
// errRolledBack: they would run outside any transaction, each committing
// at once. (QueryRowContext, which cannot fail before Scan, still runs: a
// read writes nothing, and the batch's error replaces its function's
// result.)
type txQuerier struct {
	tx   *sql.Tx
	conn *sql.Conn // tx's connection: a new tx begins on it after endAlone
	w    *writer
	// stmts are the writer's statements bound to tx, by query text: bound
	// once per batch, closed by the transaction's end.
	stmts map[string]*sql.Stmt

	rolledBack atomic.Bool // set by SQLite's rollback hook
	cause      error       // the failure of the statement that rolled back, if seen
}

var _ querier = (*txQuerier)(nil)

// watchRollback registers a rollback hook on dc, the driver connection of
// the transaction. SQLite calls it when the transaction ends in a rollback,
// never for a ROLLBACK TO a savepoint.
func (q *txQuerier) watchRollback(dc any) error {
	c, ok := dc.(interface{ RegisterRollbackHook(sqlite.RollbackHookFn) })
	if !ok {
		return fmt.Errorf("driver connection %T has no rollback hook", dc)
	}
	c.RegisterRollbackHook(func() { q.rolledBack.Store(true) })
	return nil
}

// broken returns why the transaction can no longer commit, if SQLite
// rolled it back.
func (q *txQuerier) broken() error {
	switch {
	case !q.rolledBack.Load():
		return nil
	case q.cause != nil:
		return fmt.Errorf("%w: %w", errRolledBack, q.cause)
	}
	return errRolledBack
}

// endSavepoint ends the savepoint of a function that returned res: rolled
// back to when it failed or panicked, then released. It fails when the
// transaction can no longer commit.
func (q *txQuerier) endSavepoint(res txResult) error {
	if err := q.broken(); err != nil {
		return err
	}
	ctx := context.Background()
	if res.err != nil || res.panicked {
		if _, err := q.ExecContext(ctx, "ROLLBACK TO fn"); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := q.ExecContext(ctx, "RELEASE fn"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// endAlone ends the function that ran with nothing else in the
// transaction, which returned res: when it failed or panicked, its writes
// are rolled back with the transaction, and a new one begins for the rest
// of the batch. It fails when the transaction can no longer commit, or a
// new one cannot begin.
func (q *txQuerier) endAlone(res txResult) error {
	if err := q.broken(); err != nil {
		return err
	}
	if res.err == nil && !res.panicked {
		return nil
	}
	if err := q.tx.Rollback(); err != nil {
		return fmt.Errorf("roll back a failed function: %w", err)
	}
	// That rollback was this writer's own: the hook saw it, the new
	// transaction has lost nothing.
	q.rolledBack.Store(false)
	q.cause = nil
	return q.begin()
}

// begin begins the transaction on q's connection; statements bound to
// an earlier one are dropped.
func (q *txQuerier) begin() error {
	tx, err := q.conn.BeginTx(context.Background(), nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	q.tx, q.stmts = tx, nil
	return nil
}

// start reports why a statement of a caller with ctx must not run.
func (q *txQuerier) start(ctx context.Context) error {
	if q.rolledBack.Load() {
		return errRolledBack
	}
	return ctx.Err()
}

// ran notes err, a statement's failure, as the cause of a rollback it made.
func (q *txQuerier) ran(err error) {
	if err != nil && q.cause == nil && q.rolledBack.Load() {
		q.cause = err
	}
}

func (q *txQuerier) stmt(query string) *sql.Stmt {
	if s := q.stmts[query]; s != nil {
		return s
	}
	if s := q.w.stmts[query]; s != nil {
		if q.stmts == nil {
			q.stmts = map[string]*sql.Stmt{}
		}
		// Bound on the writer's context: a caller's ended context must
		// not stick to the statement for the rest of the batch.
		bound := q.tx.StmtContext(context.Background(), s)
		q.stmts[query] = bound
		return bound
	}
	q.w.pending[query] = true
	return nil
}

func (q *txQuerier) ExecContext(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	if err := q.start(ctx); err != nil {
		return nil, err
	}
	defer func() { q.ran(err) }()
	ctx = context.Background()
	if s := q.stmt(query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, query, args...)
}

func (q *txQuerier) QueryContext(ctx context.Context, query string, args ...any) (rows *sql.Rows, err error) {
	if err := q.start(ctx); err != nil {
		return nil, err
	}
	defer func() { q.ran(err) }()
	ctx = context.Background()
	if s := q.stmt(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

func (q *txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if ctx.Err() == nil {
		ctx = context.Background()
	} // else database/sql answers the ended context's error without running the query
	if s := q.stmt(query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, query, args...)
}
