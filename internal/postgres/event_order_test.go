package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/pgtest"
	"github.com/papayd/papayd/internal/service"
)

// openReplicas opens n stores on one new database: n replicas of papayd.
func openReplicas(t *testing.T, n int) []*DB {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	dbs := make([]*DB, n)
	for i := range dbs {
		db, err := Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		dbs[i] = db
	}
	return dbs
}

// eventReader follows the events from its cursor, as the webhook
// dispatcher does: it takes EventsCommitted, lists a page after its cursor,
// and waits for the wake-up when the page was empty (poll set: sleeps a
// millisecond instead, a reader as eager as can be). It records what it
// saw and any sequence at or below one it saw before.
type eventReader struct {
	name    string
	db      *DB
	poll    bool
	seen    []uint64
	problem []string
}

// watch runs readers until ctx ends.
type watch struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	readers []*eventReader
}

func startWatch(t *testing.T, readers ...*eventReader) *watch {
	ctx, cancel := context.WithCancel(t.Context())
	w := &watch{cancel: cancel, readers: readers}
	for _, r := range readers {
		w.wg.Go(func() {
			var after uint64
			for ctx.Err() == nil {
				wake := r.db.EventsCommitted()
				es, err := r.db.ListEvents(ctx, service.EventFilter{AfterSequence: after, PageSize: 7})
				if err != nil {
					if ctx.Err() == nil {
						w.mu.Lock()
						r.problem = append(r.problem, fmt.Sprintf("%s: %v", r.name, err))
						w.mu.Unlock()
					}
					return
				}
				w.mu.Lock()
				for _, e := range es {
					if e.Sequence <= after {
						r.problem = append(r.problem, fmt.Sprintf("%s: %d after %d", r.name, e.Sequence, after))
					}
					after = e.Sequence
					r.seen = append(r.seen, e.Sequence)
				}
				w.mu.Unlock()
				switch {
				case len(es) > 0:
				case r.poll:
					time.Sleep(time.Millisecond)
				default:
					select {
					case <-wake:
					case <-ctx.Done():
					}
				}
			}
		})
	}
	return w
}

// caughtUp reports whether every reader saw last.
func (w *watch) caughtUp(last uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.readers {
		if len(r.seen) == 0 || r.seen[len(r.seen)-1] < last {
			return false
		}
	}
	return true
}

// problems waits until the readers saw the last committed event (or 10
// seconds passed), stops them, and compares what each saw with the
// committed sequences.
func (w *watch) problems(t *testing.T, db *DB) []string {
	t.Helper()
	var committed []uint64
	rows, err := db.pool.Query(t.Context(), `SELECT sequence FROM events ORDER BY sequence`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		committed = append(committed, uint64(s))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(committed) > 0 {
		deadline := time.Now().Add(10 * time.Second)
		for !w.caughtUp(committed[len(committed)-1]) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	w.cancel()
	w.wg.Wait()
	var out []string
	for _, r := range w.readers {
		out = append(out, r.problem...)
		if !slices.Equal(r.seen, committed) {
			missed, extra := diffSeqs(committed, r.seen)
			out = append(out, fmt.Sprintf("%s saw %d of %d committed events; missed %v, not committed or twice %v",
				r.name, len(r.seen), len(committed), missed, extra))
		}
	}
	return out
}

// diffSeqs returns the sequences of want missing from got, and those of got
// not in want or repeated (at most 10 of each).
func diffSeqs(want, got []uint64) (missed, extra []uint64) {
	n := make(map[uint64]int)
	for _, s := range got {
		n[s]++
	}
	for _, s := range want {
		if n[s] == 0 && len(missed) < 10 {
			missed = append(missed, s)
		}
		n[s]--
	}
	for _, s := range got {
		if n[s] > 0 && len(extra) < 10 {
			extra = append(extra, s)
			n[s] = 0
		}
	}
	return missed, extra
}

// TestEventsInCommitOrderAcrossReplicas is the point of the events lock:
// eight writers split across two replicas append events in transactions of
// one to three, some rolled back, while live readers on both replicas
// follow from their cursors (woken by EventsCommitted, or polling). Every
// committed sequence is seen by every reader exactly once, in increasing
// order. Without the lock in flushEvents, numbers drawn by one replica
// commit after higher ones of the other, and the readers miss them.
func TestEventsInCommitOrderAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	w := startWatch(t,
		&eventReader{name: "stream on replica 0", db: dbs[0]},
		&eventReader{name: "stream on replica 1", db: dbs[1]},
		&eventReader{name: "poller on replica 1", db: dbs[1], poll: true},
	)
	errRolledBack := errors.New("rolled back")
	var appended atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		db := dbs[g%2]
		wg.Go(func() {
			for i := range 40 {
				n := 1 + (g+i)%3
				err := db.InTx(ctx, func(tx Tx) error {
					for range n {
						if err := tx.AppendEvent(ctx, service.Event{Type: service.EventChargeCreated, CreateTime: evTime, SubMchID: fmt.Sprint(g)}); err != nil {
							return err
						}
					}
					if i%5 == 0 {
						return errRolledBack
					}
					return nil
				})
				switch {
				case err == nil:
					appended.Add(int64(n))
				case !errors.Is(err, errRolledBack):
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var rows int64
	if err := dbs[0].pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != appended.Load() {
		t.Errorf("%d events in the table, %d appended by committed transactions", rows, appended.Load())
	}
	if p := w.problems(t, dbs[0]); len(p) > 0 {
		t.Fatalf("readers:\n%v", p)
	}
}

// TestWatchCatchesOutOfOrderCommits shows that the watch of
// TestEventsInCommitOrderAcrossReplicas is not blind: two events inserted
// bypassing the lock, the lower number committed after the higher one was
// listed, are reported as missed.
func TestWatchCatchesOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	w := startWatch(t, &eventReader{name: "stream on replica 1", db: dbs[1]})
	insert := func(seq int) {
		_, err := dbs[0].pool.Exec(ctx, `WITH e AS (INSERT INTO events (sequence, id, type, create_time, sub_mchid, resource)
VALUES ($1, $2, 'charge.created', 0, '', '{}') RETURNING sequence)
SELECT pg_notify('papayd_events', sequence::text) FROM e`, seq, fmt.Sprint("evt_", seq))
		if err != nil {
			t.Fatal(err)
		}
	}
	insert(2)
	for !w.caughtUp(2) {
		time.Sleep(time.Millisecond)
	}
	insert(1)
	if p := w.problems(t, dbs[0]); len(p) == 0 {
		t.Fatal("an event committed below a sequence already listed went unnoticed")
	} else {
		t.Logf("reported, as it should be: %v", p)
	}
}

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// TestEventsCommittedAcrossReplicas: a commit appending an event wakes the
// readers of its own replica when InTx returns and those of another
// replica by NOTIFY; a commit appending none wakes no one.
func TestEventsCommittedAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	waitListening(t, dbs[0], 2)
	wake0, wake1 := quietWake(t, dbs[0]), quietWake(t, dbs[1])
	inTx(t, dbs[0], func(tx Tx) error { return tx.CreateAgreement(ctx, fullAgreement("C1", "", evTime)) })
	if closedWithin(wake0, 0) || closedWithin(wake1, 1500*time.Millisecond) {
		t.Fatal("a commit without events woke the readers")
	}
	// Five rounds, each woken well within the poll's second: the poll
	// could rescue one round at most, the notifications wake them all.
	for round := range 5 {
		start := time.Now()
		appendEvents(t, dbs[0], service.Event{Type: service.EventChargeCreated, CreateTime: evTime})
		if !closedWithin(wake0, 0) {
			t.Fatal("the committing replica's readers were not woken when InTx returned")
		}
		if !closedWithin(wake1, 250*time.Millisecond) {
			t.Fatalf("round %d: the other replica's readers were not woken by the notification", round)
		}
		t.Logf("round %d: woken on the other replica after %v", round, time.Since(start))
		if es, err := dbs[1].ListEvents(ctx, service.EventFilter{}); err != nil || len(es) != round+1 {
			t.Fatalf("the woken reader lists %v, %v", sequences(es), err)
		}
		wake0, wake1 = dbs[0].EventsCommitted(), dbs[1].EventsCommitted()
	}
}

// TestEventsCommittedPollFallback: an event committed without a
// notification (as when the listener's connection was down) still wakes
// the readers, by the poll of max(sequence), within about a second.
func TestEventsCommittedPollFallback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 1)
	waitListening(t, dbs[0], 1)
	wake := quietWake(t, dbs[0])
	// A poll that finds nothing new wakes no one.
	if closedWithin(wake, pollInterval+pollInterval/2) {
		t.Fatal("woken with nothing committed")
	}
	if _, err := dbs[0].pool.Exec(ctx, `INSERT INTO events (sequence, id, type, create_time, sub_mchid, resource)
VALUES (nextval('events_sequence'), 'evt_silent', 'charge.created', 0, '', '{}')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !closedWithin(wake, 3*pollInterval) {
		t.Fatal("an event committed without a notification never woke the readers")
	}
	t.Logf("woken by the poll after %v", time.Since(start))
}

// quietWake returns db.EventsCommitted() once a 200 ms pause passed
// without a wake-up, the one of the listener's first LISTEN included, so
// that the tests see only the wake-ups they cause.
func quietWake(t *testing.T, db *DB) <-chan struct{} {
	t.Helper()
	for range 50 {
		wake := db.EventsCommitted()
		if !closedWithin(wake, 200*time.Millisecond) {
			return wake
		}
	}
	t.Fatal("woken again and again with nothing committed")
	return nil
}

// listeners returns the backend pids in LISTEN on eventsChannel in db's
// database.
func listeners(t *testing.T, db *DB) []int32 {
	t.Helper()
	rows, err := db.pool.Query(t.Context(), `SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND query = $1 ORDER BY pid`, listenEventsSQL)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return pids
}

// waitListening waits until n connections listen in db's database.
func waitListening(t *testing.T, db *DB, n int) []int32 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := listeners(t, db)
		if len(pids) == n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections listening, want %d", len(pids), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsListenerReconnects: when the listening connection is killed,
// the listener reconnects, wakes every reader once (notifications sent
// meanwhile are lost), and the notifications of the other replica wake its
// readers again.
func TestEventsListenerReconnects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	before := waitListening(t, dbs[0], 2)
	wake := quietWake(t, dbs[1])
	if _, err := dbs[0].pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, before); err != nil {
		t.Fatal(err)
	}
	// Nothing was committed: only the reconnection closes it.
	if !closedWithin(wake, 10*time.Second) {
		t.Fatal("readers not woken on reconnecting")
	}
	after := waitListening(t, dbs[0], 2)
	for _, pid := range after {
		if slices.Contains(before, pid) {
			t.Fatalf("listener %d survived its termination", pid)
		}
	}
	wake = dbs[1].EventsCommitted()
	appendEvents(t, dbs[0], service.Event{Type: service.EventChargeCreated, CreateTime: evTime})
	if !closedWithin(wake, 500*time.Millisecond) {
		t.Fatal("the other replica's readers not woken after the listener reconnected")
	}
}
