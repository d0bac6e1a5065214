package postgres

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/papayd/papayd/internal/service"
)

// The wake-ups of EventsCommitted, from three sources (see DESIGN): this
// replica's own commits, at once; every replica's commits, by a NOTIFY on
// eventsChannel received on one connection outside the pool (reconnected
// with backoff, waking every reader on each reconnect, since notifications
// sent while it was down are lost); and a poll of max(sequence) every
// pollInterval, in case a notification is lost anyway.
const (
	pollInterval      = time.Second
	minListenBackoff  = 50 * time.Millisecond
	maxListenBackoff  = 5 * time.Second
	maxEventSeqSQL    = `SELECT coalesce(max(sequence), 0) FROM events`
	listenEventsSQL   = `LISTEN ` + eventsChannel
	eventHubStopGrace = 5 * time.Second
)

// eventHub closes and replaces the wake channel of EventsCommitted.
type eventHub struct {
	mu      sync.Mutex
	wake    chan struct{}
	seen    uint64 // the highest sequence known committed when wake was last closed
	observe func(types []service.EventType)

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// startEventHub starts the listener and the poll on pool's database.
// seen is the highest sequence committed at the start.
func startEventHub(pool *pgxpool.Pool, seen uint64) *eventHub {
	ctx, stop := context.WithCancel(context.Background())
	h := &eventHub{wake: make(chan struct{}), seen: seen, stop: stop}
	h.wg.Go(func() { h.listen(ctx, pool.Config().ConnConfig.Copy()) })
	h.wg.Go(func() { h.poll(ctx, pool) })
	return h
}

// close stops the listener and the poll and waits for them.
func (h *eventHub) close() {
	h.stop()
	h.wg.Wait()
}

// committed wakes the readers when through is above what they were last
// woken for, or always when force is set.
func (h *eventHub) committed(through uint64, force bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !force && through <= h.seen {
		return
	}
	h.seen = max(h.seen, through)
	close(h.wake)
	h.wake = make(chan struct{})
}

// published is told by InTx of its own commit that appended types, up to
// sequence through: it wakes the readers and tells ObserveEvents' fn.
func (h *eventHub) published(through uint64, types []service.EventType) {
	h.committed(through, false)
	h.mu.Lock()
	obs := h.observe
	h.mu.Unlock()
	if obs != nil {
		obs(types)
	}
}

// listen keeps one connection in LISTEN eventsChannel until ctx ends.
func (h *eventHub) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	backoff := minListenBackoff
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, listenEventsSQL); err == nil {
				backoff = minListenBackoff
				// Notifications sent while no connection listened are lost.
				h.committed(0, true)
				h.receive(ctx, conn)
			}
			closeCtx, cancel := context.WithTimeout(context.Background(), eventHubStopGrace)
			_ = conn.Close(closeCtx)
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxListenBackoff)
	}
}

// receive wakes the readers on each notification until the connection
// fails or ctx ends (listen then connects again).
func (h *eventHub) receive(ctx context.Context, conn *pgx.Conn) {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		seq, err := strconv.ParseUint(n.Payload, 10, 64)
		h.committed(seq, err != nil)
	}
}

// poll wakes the readers when max(sequence) rose since they were last
// woken, every pollInterval until ctx ends.
func (h *eventHub) poll(ctx context.Context, pool *pgxpool.Pool) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var seq int64
		if err := pool.QueryRow(ctx, maxEventSeqSQL).Scan(&seq); err == nil {
			h.committed(uint64(seq), false)
		}
	}
}

// EventsCommitted returns a channel closed by the next commit that appends
// an event, on any replica of the database: at once for this replica's
// commits, within a round trip for the others' (NOTIFY), within about a
// second if the notification was lost. A reader takes it before it reads.
func (db *DB) EventsCommitted() <-chan struct{} {
	db.events.mu.Lock()
	defer db.events.mu.Unlock()
	return db.events.wake
}

// ObserveEvents has fn told, after each commit of this replica that
// appended events, their types. fn runs on the committing goroutine and
// must not block.
func (db *DB) ObserveEvents(fn func(types []service.EventType)) {
	db.events.mu.Lock()
	defer db.events.mu.Unlock()
	db.events.observe = fn
}
