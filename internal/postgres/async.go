package postgres

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Writes off the caller's path. TouchKey, RecordAuditEntry and
// RecordWeChatCall return once their write is queued, as in internal/db,
// where they join the single writer's next group commit. Here one
// goroutine per DB drains a bounded queue: it takes what is queued (up to
// maxAsyncBatch), sends it as one pgx batch on the pool (one round trip,
// one implicit transaction, one commit) and reports each insert's failure
// to its callback. The batch is all or nothing, so when it fails the
// writer runs its statements again one at a time, in autocommit, and each
// insert gets its own outcome: one bad row never costs the others.
//
// Touches of one key in a batch collapse to the latest; they are sent in
// key id order, so two replicas' batches lock the api_keys rows in the same
// order and cannot deadlock each other. A touch is one UPDATE whose WHERE
// keeps only a later time: under READ COMMITTED an UPDATE that waited for
// another's row lock re-checks the WHERE on the row as committed, so
// LastUsedTime never goes back, whatever the order the replicas' touches
// commit in, and an older time writes no row version at all. A touch that
// fails is dropped (it costs a stale LastUsedTime). A SERIALIZABLE
// transaction that writes a key (RevokeKey) and races a touch of that key
// is aborted and rerun by InTx, as for any other conflict.
//
// Posting blocks while the queue is full, until ctx ends. Close stops
// taking writes (ErrClosed) and returns once everything queued is written
// or has failed; a batch gets asyncWriteTimeout in all, its one-at-a-time
// rerun included, so an unreachable database does not hold Close for
// long. The callers must not post from inside InTx: fn may run more than
// once (every run would post), and with the queue full and the pool's
// connections held by transactions waiting to post, the writer could not
// get a connection.
const (
	asyncQueueLen     = 1024
	maxAsyncBatch     = 128
	asyncWriteTimeout = 10 * time.Second
)

// ErrClosed is returned for writes queued after Close.
var ErrClosed = errors.New("database closed")

// asyncWrite is one queued write: a touch (keyID set), an insert (sql
// set), or a flush marker (flushed set).
type asyncWrite struct {
	keyID string
	at    int64 // the touch's time, unix nanoseconds

	sql    string
	args   []any
	failed func(error) // told the insert's failure; nil: dropped

	flushed chan struct{} // closed once everything queued before it is written
}

// asyncWriter runs the queued writes.
type asyncWriter struct {
	pool  *pgxpool.Pool
	queue chan asyncWrite

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	done   chan struct{}
}

func startAsyncWriter(pool *pgxpool.Pool) *asyncWriter {
	w := &asyncWriter{pool: pool, queue: make(chan asyncWrite, asyncQueueLen), done: make(chan struct{})}
	go w.run()
	return w
}

// post queues r. It returns ErrClosed after close, or ctx's cause when
// ctx ends while the queue is full.
func (w *asyncWriter) post(ctx context.Context, r asyncWrite) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- r:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// flush returns once every write queued before it has been written or has
// failed, or when ctx ends.
func (w *asyncWriter) flush(ctx context.Context) error {
	done := make(chan struct{})
	if err := w.post(ctx, asyncWrite{flushed: done}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// close stops the writer after the queued writes have run.
func (w *asyncWriter) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *asyncWriter) run() {
	defer close(w.done)
	batch := make([]asyncWrite, 0, maxAsyncBatch)
	for first := range w.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < maxAsyncBatch {
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
		w.write(batch)
	}
}

// write runs one batch: the inserts in queue order, then the touches, then
// it releases the flush markers.
func (w *asyncWriter) write(batch []asyncWrite) {
	var (
		inserts []asyncWrite
		touches = map[string]int64{}
		markers []chan struct{}
	)
	for _, r := range batch {
		switch {
		case r.flushed != nil:
			markers = append(markers, r.flushed)
		case r.keyID != "":
			touches[r.keyID] = max(touches[r.keyID], r.at)
		default:
			inserts = append(inserts, r)
		}
	}
	defer func() {
		for _, m := range markers {
			close(m)
		}
	}()
	ids := slices.Sorted(maps.Keys(touches))
	var b pgx.Batch
	for _, r := range inserts {
		b.Queue(r.sql, r.args...)
	}
	for _, id := range ids {
		b.Queue(touchKeySQL, id, touches[id])
	}
	if b.Len() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), asyncWriteTimeout)
	defer cancel()
	if err := w.pool.SendBatch(ctx, &b).Close(); err == nil {
		return
	}
	// The batch rolled back as a whole: one at a time, each its own outcome.
	for _, r := range inserts {
		if _, err := w.pool.Exec(ctx, r.sql, r.args...); err != nil && r.failed != nil {
			r.failed(err)
		}
	}
	for _, id := range ids {
		_, _ = w.pool.Exec(ctx, touchKeySQL, id, touches[id])
	}
}
