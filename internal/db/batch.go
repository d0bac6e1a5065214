package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Every write transaction is run by one writer goroutine,
// which owns the single writer connection. When several are waiting it runs
// them together: one BEGIN IMMEDIATE, each function inside its own
// SAVEPOINT (so an error or panic rolls back that function alone), one
// COMMIT, one fsync. Each caller is answered only after that commit, with
// its own function's result: the semantics of one transaction per call,
// at the cost of one fsync per batch instead of per call.

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

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	done   chan struct{}

	// observe, when set, is told each batch's size and how long it took
	// from BEGIN to the end of COMMIT (metrics).
	observe atomic.Pointer[func(transactions int, took time.Duration)]
}

func newWriter(conn *sql.DB, c *caches) *writer {
	w := &writer{conn: conn, caches: c, queue: make(chan *txRequest, maxBatch), done: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
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
	if obs := w.observe.Load(); obs != nil {
		start := time.Now()
		defer func() { (*obs)(len(batch), time.Since(start)) }()
	}
	results := make([]txResult, len(batch))
	answer := func() {
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
	rawTx, err := w.conn.BeginTx(context.Background(), nil)
	if err != nil {
		for i := range results {
			results[i].err = fmt.Errorf("begin transaction: %w", err)
		}
		answer()
		return
	}
	sqlTx := &txQuerier{tx: rawTx, w: w}
	broken := error(nil) // the transaction itself is unusable
	ran := false
	for i, r := range batch {
		if broken != nil {
			results[i].err = broken
			continue
		}
		if err := r.ctx.Err(); err != nil {
			results[i].err = err // gave up before it ran: nothing happens
			continue
		}
		if _, err := sqlTx.ExecContext(context.Background(), "SAVEPOINT fn"); err != nil {
			broken = fmt.Errorf("savepoint: %w", err)
			results[i].err = broken
			continue
		}
		results[i] = runOne(r, &tx{reader: reader{q: sqlTx}, caches: w.caches, touched: &w.touched})
		if results[i].err != nil || results[i].panicked {
			if _, err := sqlTx.ExecContext(context.Background(), "ROLLBACK TO fn"); err != nil {
				broken = fmt.Errorf("rollback to savepoint: %w", err)
			}
		}
		if broken == nil {
			if _, err := sqlTx.ExecContext(context.Background(), "RELEASE fn"); err != nil {
				broken = fmt.Errorf("release savepoint: %w", err)
			}
		}
		ran = true
	}
	if broken != nil || !ran {
		_ = rawTx.Rollback()
		if broken != nil {
			for i := range results {
				if results[i].err == nil && !results[i].panicked {
					results[i].err = broken
				}
			}
		}
		answer()
		return
	}
	if err := rawTx.Commit(); err != nil {
		err = fmt.Errorf("commit transaction: %w", err)
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i].err = err
			}
		}
	}
	answer()
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

// preparePending prepares the queries first seen in the last batch, now
// that the connection is free.
func (w *writer) preparePending() {
	for query := range w.pending {
		delete(w.pending, query)
		if s, err := w.conn.PrepareContext(context.Background(), query); err == nil {
			w.stmts[query] = s
		}
	}
}

// txQuerier runs a batch's statements through the writer's prepared
// statements (bound to the transaction), or unprepared the first time.
type txQuerier struct {
	tx *sql.Tx
	w  *writer
}

var _ querier = (*txQuerier)(nil)

func (q *txQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if s := q.w.stmts[query]; s != nil {
		return q.tx.StmtContext(ctx, s)
	}
	q.w.pending[query] = true
	return nil
}

func (q *txQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, query, args...)
}

func (q *txQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

func (q *txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, query, args...)
}
