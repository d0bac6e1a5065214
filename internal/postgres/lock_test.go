package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/pgtest"
)

// openOn opens a store on url, closed when the test ends.
func openOn(t *testing.T, url string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// lockKey locks key on db within a few seconds and fails the test
// otherwise.
func lockKey(t *testing.T, db *DB, key string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	unlock, err := db.LockKey(ctx, key)
	if err != nil {
		t.Fatalf("LockKey(%q): %v", key, err)
	}
	return unlock
}

// lockAsync starts LockKey(key) on db and returns the channel its unlock
// function (or its error) arrives on.
func lockAsync(ctx context.Context, db *DB, key string) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		unlock, err := db.LockKey(ctx, key)
		ch <- lockResult{unlock, err}
	}()
	return ch
}

type lockResult struct {
	unlock func()
	err    error
}

// waitLock waits for a result of lockAsync, failing the test after a few
// seconds.
func waitLock(t *testing.T, ch <-chan lockResult) lockResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("LockKey still waiting after 10s")
		return lockResult{}
	}
}

// stillWaiting reports that nothing arrived on ch for a while.
func stillWaiting(ch <-chan lockResult) bool {
	select {
	case <-ch:
		return false
	case <-time.After(200 * time.Millisecond):
		return true
	}
}

// keyLocksHeld counts the key locks granted in the database (the two-int4
// advisory key space: objsubid 2).
func keyLocksHeld(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLockKeyAcrossReplicas(t *testing.T) {
	t.Parallel()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]

	unlockA := lockKey(t, a, "charge/x")
	waiting := lockAsync(t.Context(), b, "charge/x")
	if !stillWaiting(waiting) {
		t.Fatal("replica B locked charge/x while replica A held it")
	}
	// Other keys do not wait, on either replica.
	unlockY := lockKey(t, b, "charge/y")
	unlockZ := lockKey(t, a, "contract/x")
	if n := keyLocksHeld(t, a); n != 3 {
		t.Errorf("%d key locks granted, want 3", n)
	}

	unlockA()
	unlockA() // a second call does nothing
	r := waitLock(t, waiting)
	if r.err != nil {
		t.Fatalf("replica B: LockKey after A unlocked: %v", r.err)
	}
	// A waits for B now.
	again := lockAsync(t.Context(), a, "charge/x")
	if !stillWaiting(again) {
		t.Fatal("replica A locked charge/x while replica B held it")
	}
	r.unlock()
	if r := waitLock(t, again); r.err != nil {
		t.Fatalf("replica A: LockKey after B unlocked: %v", r.err)
	} else {
		r.unlock()
	}
	unlockY()
	unlockZ()
	if n := keyLocksHeld(t, a); n != 0 {
		t.Errorf("%d key locks granted after every unlock, want 0", n)
	}
}

func TestLockKeyCanceled(t *testing.T) {
	t.Parallel()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]

	unlock := lockKey(t, a, "presign/c")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := b.LockKey(ctx, "presign/c")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockKey with a deadline while held: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("LockKey returned %v after its deadline", d)
	}
	canceled, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	if _, err := b.LockKey(canceled, "presign/c"); !errors.Is(err, context.Canceled) {
		t.Fatalf("LockKey with a canceled ctx: %v, want context.Canceled", err)
	}
	unlock()
	// The key is free: neither wait left a lock behind.
	lockKey(t, a, "presign/c")()
	lockKey(t, b, "presign/c")()

	// Waits canceled at any moment, before, during or after the grant:
	// each either returns a lock or leaves none behind.
	for i := range 30 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(rand.N(3000))*time.Microsecond)
		unlock, err := b.LockKey(ctx, "presign/d")
		cancel()
		if err == nil {
			unlock()
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run %d: %v", i, err)
		}
		lockKey(t, a, "presign/d")()
	}
	if n := keyLocksHeld(t, a); n != 0 {
		t.Errorf("%d key locks granted after the canceled waits, want 0", n)
	}
}

func TestLockKeyReleasedWhenReplicaCloses(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	a, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	b := openOn(t, url)

	unlockA := lockKey(t, a, "charge/x")
	unlockB := lockKey(t, b, "charge/held-by-b")
	defer unlockB()
	waitingA := lockAsync(t.Context(), a, "charge/held-by-b")
	if !stillWaiting(waitingA) {
		t.Fatal("replica A locked charge/held-by-b while replica B held it")
	}
	waitingB := lockAsync(t.Context(), b, "charge/x")
	if !stillWaiting(waitingB) {
		t.Fatal("replica B locked charge/x while replica A held it")
	}

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still running after 10s with a lock held and a wait")
	}
	// Close canceled A's wait, and ended the session of A's lock.
	if r := waitLock(t, waitingA); !errors.Is(r.err, ErrClosed) {
		t.Errorf("A's wait at Close: %v, want ErrClosed", r.err)
	}
	r := waitLock(t, waitingB)
	if r.err != nil {
		t.Fatalf("replica B: LockKey after A closed: %v", r.err)
	}
	r.unlock()
	unlockA() // after Close: does nothing
	if _, err := a.LockKey(t.Context(), "charge/x"); !errors.Is(err, ErrClosed) {
		t.Errorf("LockKey after Close: %v, want ErrClosed", err)
	}
}

func TestLockKeyReleasedWhenSessionEnds(t *testing.T) {
	t.Parallel()
	dbs := openReplicas(t, 2)
	a, b := dbs[0], dbs[1]

	unlockA := lockKey(t, a, "charge/x")
	var pid int32
	err := b.pool.QueryRow(t.Context(), `SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	// The session of A's lock ended: B locks the key.
	unlockB := lockKey(t, b, "charge/x")
	unlockA() // its connection is gone: unlock closes it and returns
	waiting := lockAsync(t.Context(), a, "charge/x")
	if !stillWaiting(waiting) {
		t.Fatal("replica A locked charge/x while replica B held it")
	}
	unlockB()
	if r := waitLock(t, waiting); r.err != nil {
		t.Fatalf("replica A: LockKey after its lock connection died: %v", r.err)
	} else {
		r.unlock()
	}
}

// TestLockKeyPoolSize pins that the lock pool bounds the locks one replica
// holds, and that held locks do not take the connections of queries.
func TestLockKeyPoolSize(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t.Context(), t)
	db := openOn(t, url, WithLockConns(2))
	u1, u2 := lockKey(t, db, "k/1"), lockKey(t, db, "k/2")
	third := lockAsync(t.Context(), db, "k/3")
	if !stillWaiting(third) {
		t.Fatal("a third key locked on a lock pool of 2")
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping with the lock pool full: %v", err)
	}
	u1()
	if r := waitLock(t, third); r.err != nil {
		t.Fatalf("third key after an unlock: %v", r.err)
	} else {
		r.unlock()
	}
	u2()
}

// TestLockKeySerializesReplicas runs read-check-write updates of one row
// from 20 goroutines split over two replicas, each under LockKey of one
// key, reading and writing in separate statements (so separate
// transactions) with a sleep between: only the lock keeps them from
// losing updates. Without it (LockKey returning at once) the count comes
// out short and several goroutines see themselves first.
func TestLockKeySerializesReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbs := openReplicas(t, 2)
	if _, err := dbs[0].pool.Exec(ctx, `CREATE TABLE lock_counter (id INT PRIMARY KEY, n BIGINT NOT NULL, first TEXT NOT NULL);
INSERT INTO lock_counter VALUES (1, 0, '')`); err != nil {
		t.Fatal(err)
	}
	const workers = 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		db := dbs[i%2]
		me := fmt.Sprintf("worker %d", i)
		wg.Go(func() {
			unlock, err := db.LockKey(ctx, "charge/x")
			if err != nil {
				errs <- err
				return
			}
			defer unlock()
			var n int64
			var first string
			if err := db.pool.QueryRow(ctx, `SELECT n, first FROM lock_counter WHERE id = 1`).Scan(&n, &first); err != nil {
				errs <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
			if first == "" {
				first = me
			}
			if _, err := db.pool.Exec(ctx, `UPDATE lock_counter SET n = $1, first = $2 WHERE id = 1`, n+1, first); err != nil {
				errs <- err
				return
			}
			if first == me {
				errs <- errFirst
			}
		})
	}
	wg.Wait()
	close(errs)
	firsts := 0
	for err := range errs {
		if errors.Is(err, errFirst) {
			firsts++
		} else {
			t.Error(err)
		}
	}
	var n int64
	if err := dbs[1].pool.QueryRow(ctx, `SELECT n FROM lock_counter WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != workers || firsts != 1 {
		t.Errorf("count %d with %d first winners, want %d with 1: updates were lost", n, firsts, workers)
	}
}

var errFirst = errors.New("first")
