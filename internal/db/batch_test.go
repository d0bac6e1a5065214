package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
	"modernc.org/sqlite"
)

// TestGroupCommitIsolatesEachTransaction: many concurrent transactions
// share commits; the ones that fail or panic roll back alone, the others
// are all durable, and every caller gets its own result.
func TestGroupCommitIsolatesEachTransaction(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	ctx := t.Context()
	const n = 200
	errFail := errors.New("fail")
	results := make([]error, n)
	panicked := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					panicked[i] = true
				}
			}()
			results[i] = db.InTx(ctx, func(tx service.Tx) error {
				if err := tx.InsertNotification(ctx, service.NotificationRecord{ID: fmt.Sprintf("N%03d", i), Outcome: service.OutcomeApplied}); err != nil {
					return err
				}
				switch {
				case i%7 == 0:
					panic("boom")
				case i%3 == 0:
					return errFail
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		var want error
		if i%3 == 0 && i%7 != 0 {
			want = errFail
		}
		if panicked[i] != (i%7 == 0) || (i%7 != 0 && results[i] != want) {
			t.Errorf("transaction %d: result %v, panicked %v", i, results[i], panicked[i])
		}
		// Only the clean ones are there.
		err := db.InTx(ctx, func(tx service.Tx) error {
			return tx.InsertNotification(ctx, service.NotificationRecord{ID: fmt.Sprintf("N%03d", i), Outcome: service.OutcomeApplied})
		})
		committed := errors.Is(err, service.ErrConflict)
		if committed != (i%3 != 0 && i%7 != 0) {
			t.Errorf("transaction %d committed: %v", i, committed)
		}
	}
}

func TestWritesAfterClose(t *testing.T) {
	t.Parallel()
	db := openTestDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(t.Context(), func(service.Tx) error { return nil })
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("InTx after Close = %v, want ErrClosed", err)
	}
}

// TestPostedWritesRunBeforeClose: RecordWeChatCall does not wait for its
// commit, but Close runs everything queued, and a failure reaches the
// callback instead of vanishing.
func TestPostedWritesRunBeforeClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "papayd.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var failures atomic.Int32
	for i := range n {
		c := service.WeChatCall{Method: "POST", Path: fmt.Sprintf("/v3/%d", i), HTTPStatus: 200}
		if err := db.RecordWeChatCall(t.Context(), c, func(error) { failures.Add(1) }); err != nil {
			t.Fatal(err)
		}
	}
	// A posted function that fails is reported, not dropped.
	failed := make(chan error, 1)
	if err := db.writer.post(t.Context(), func(*tx) error { return errors.New("disk on fire") },
		func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-failed; err == nil || err.Error() != "disk on fire" {
		t.Errorf("failed posted write reported %v", err)
	}
	if got := failures.Load(); got != 0 {
		t.Errorf("%d audit rows failed", got)
	}
	if err := db.RecordWeChatCall(t.Context(), service.WeChatCall{}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("RecordWeChatCall after Close = %v, want ErrClosed", err)
	}

	db, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.read.QueryRowContext(t.Context(), `SELECT count(*) FROM wechat_calls`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Errorf("%d audit rows after Close, want %d", rows, n)
	}
}

// errDuplicate stands for the service's sentinel of a notification seen
// before, which the service answers as a success.
var errDuplicate = errors.New("duplicate notification")

// deliver records notification id as the service does: a redelivery stops
// at its id with errDuplicate.
func deliver(ctx context.Context, id string) func(*tx) error {
	return func(t *tx) error {
		seen, err := t.NotificationRecorded(ctx, service.NotificationKey{ID: id})
		if err != nil {
			return err
		}
		if seen {
			return errDuplicate
		}
		return t.InsertNotification(ctx, service.NotificationRecord{ID: id, Outcome: service.OutcomeApplied})
	}
}

// recorded reports whether notification id is in the database.
func recorded(t *testing.T, db *DB, id string) bool {
	t.Helper()
	var seen bool
	if err := db.read.QueryRowContext(t.Context(), notificationRecordedSQL, "", "", id).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	return seen
}

// batchResult is what one caller of runInOneBatch got.
type batchResult struct {
	err      error
	panicked bool
}

// runInOneBatch runs each fn with its ctx through the writer, all in one
// batch, in order: a first transaction holds the writer until every one is
// queued behind it. It fails the test unless they shared one commit.
func runInOneBatch(t *testing.T, db *DB, ctxs []context.Context, fns []func(*tx) error) []batchResult {
	t.Helper()
	var mu sync.Mutex
	var sizes []int
	db.ObserveCommits(func(n int, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	})
	held, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.writer.do(t.Context(), func(*tx) error { close(held); <-release; return nil }); err != nil {
			t.Error(err)
		}
	})
	<-held
	results := make([]batchResult, len(fns))
	for i, fn := range fns {
		wg.Go(func() {
			defer func() { results[i].panicked = recover() != nil }()
			results[i].err = db.writer.do(ctxs[i], fn)
		})
		for len(db.writer.queue) < i+1 { // queued in order
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	wg.Wait()
	db.ObserveCommits(func(int, time.Duration) {})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sizes, []int{1, len(fns)}) {
		t.Fatalf("batch sizes %v, want [1 %d]", sizes, len(fns))
	}
	return results
}

// TestBatchThatDidNotCommitFailsEveryCaller: two deliveries of notification
// N1 share a batch; the first records it, the second sees it and returns
// the duplicate sentinel. When the batch then does not commit, neither may
// be told anything but the batch's failure: the second one's "duplicate"
// would be acknowledged while N1 is not recorded. A panicking caller still
// panics. Statements after SQLite rolled the transaction back do not run
// outside it.
func TestBatchThatDidNotCommitFailsEveryCaller(t *testing.T) {
	t.Parallel()
	// rollback makes SQLite roll back the whole transaction: a duplicate
	// key with the ROLLBACK conflict resolution.
	rollback := func(t *tx) error {
		_, err := t.q.ExecContext(context.Background(), `INSERT OR ROLLBACK INTO notifications
			(id, sp_mchid, sub_mchid, event_type, summary, outcome, out_contract_code, contract_id) VALUES ('N0', '', '', '', '', '', '', '')`)
		return err
	}
	tests := []struct {
		name string
		fail func(*tx) error // run last in the batch
	}{
		{name: "rolled back, its function failed", fail: rollback},
		{name: "rolled back, its function returned nil", fail: func(t *tx) error {
			_ = rollback(t)
			// Outside any transaction this would commit on its own.
			_ = t.InsertNotification(context.Background(), service.NotificationRecord{ID: "LEAK", Outcome: service.OutcomeApplied})
			return nil
		}},
		{name: "commit failed", fail: func(t *tx) error {
			// A deferred foreign key is checked by COMMIT only.
			for _, s := range []string{
				`CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)`,
				`CREATE TEMP TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
				`INSERT INTO child VALUES (1)`,
			} {
				if _, err := t.q.ExecContext(context.Background(), s); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db := openTestDB(t)
			inTx(t, db, func(tx service.Tx) error {
				return tx.InsertNotification(ctx, service.NotificationRecord{ID: "N0", Outcome: service.OutcomeApplied})
			})
			got := runInOneBatch(t, db, []context.Context{ctx, ctx, ctx, ctx}, []func(*tx) error{
				deliver(ctx, "N1"),
				deliver(ctx, "N1"),
				func(*tx) error { panic("boom") },
				tt.fail,
			})
			for i, r := range got {
				if i == 2 {
					if !r.panicked {
						t.Errorf("caller %d did not panic", i)
					}
					continue
				}
				if r.err == nil || errors.Is(r.err, errDuplicate) || r.panicked {
					t.Errorf("caller %d: %v (panicked %v), want the batch's error", i, r.err, r.panicked)
				}
			}
			for _, id := range []string{"N1", "LEAK"} {
				if recorded(t, db, id) {
					t.Errorf("%s recorded by a batch that did not commit", id)
				}
			}
			// The writer goes on: a redelivery records N1.
			if err := db.writer.do(ctx, deliver(ctx, "N1")); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			if !recorded(t, db, "N1") {
				t.Error("N1 not recorded by its redelivery")
			}
		})
	}
}

// testCalls are the Go functions SQL can call in tests, by name, through
// the SQL function test_call(name): it runs the function and returns NULL.
var testCalls sync.Map // string -> func()

func init() {
	sqlite.MustRegisterScalarFunction("test_call", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		name, _ := args[0].(string)
		if fn, ok := testCalls.Load(name); ok {
			fn.(func())()
		}
		return nil, nil
	})
}

// TestCancelledCallerDoesNotInterruptTheBatch: a caller's context ends
// while its statement runs (a write, which SQLite would answer with a
// rollback of the whole transaction if interrupted). The statement
// completes; the caller's next statement fails on its context, so its
// function fails and rolls back alone; the callers before and after it in
// the batch commit.
func TestCancelledCallerDoesNotInterruptTheBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	cancelled, cancel := context.WithCancel(ctx)
	defer cancel()
	name := t.Name()
	testCalls.Store(name, sync.OnceFunc(func() {
		cancel()
		time.Sleep(20 * time.Millisecond) // for the driver to see it, were it watching
	}))
	defer testCalls.Delete(name)
	// test_call runs on the first of many rows: the statement goes on after
	// the context ended.
	const slowWrite = `DELETE FROM notifications WHERE id IN (
		WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000)
		SELECT 'none' FROM n WHERE x > 1 OR test_call(?) IS NOT NULL)`
	got := runInOneBatch(t, db, []context.Context{ctx, cancelled, ctx}, []func(*tx) error{
		deliver(ctx, "N1"),
		func(t *tx) error {
			if _, err := t.q.ExecContext(cancelled, slowWrite, name); err != nil {
				return fmt.Errorf("slow write: %w", err)
			}
			return deliver(cancelled, "N2")(t)
		},
		deliver(ctx, "N3"),
	})
	if got[0].err != nil || got[2].err != nil {
		t.Errorf("the other callers: %v, %v; want nil", got[0].err, got[2].err)
	}
	if !errors.Is(got[1].err, context.Canceled) {
		t.Errorf("the cancelled caller: %v, want context.Canceled", got[1].err)
	}
	for id, want := range map[string]bool{"N1": true, "N2": false, "N3": true} {
		if recorded(t, db, id) != want {
			t.Errorf("%s recorded: %v, want %v", id, !want, want)
		}
	}
}

// TestLastCommitFailure: a batch that did not commit is remembered, with
// its cause, for readiness.
func TestLastCommitFailure(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	if at, _ := db.LastCommitFailure(); !at.IsZero() {
		t.Fatalf("a failure before any write: %v", at)
	}
	inTx(t, db, func(tx service.Tx) error {
		_, err := tx.CreateIntent(ctx, service.Intent{Kind: "K", Key: "k", CreateTime: time.Now()})
		return err
	})
	// ON CONFLICT ROLLBACK ends the whole transaction: the batch cannot commit.
	err := db.writer.do(ctx, func(t *tx) error {
		_, err := t.q.ExecContext(ctx, `INSERT OR ROLLBACK INTO intents (kind, key, note, create_time) VALUES ('K', 'k', '', 1)`)
		return err
	})
	if err == nil {
		t.Fatal("the conflicting insert committed")
	}
	if at, cause := db.LastCommitFailure(); at.IsZero() || cause == nil || time.Since(at) > time.Minute {
		t.Fatalf("LastCommitFailure() = %v, %v", at, cause)
	}
}

// TestQueuedWritesLandBeforeTheNextCommit: TouchKey and RecordAuditEntry
// are queued for the writer, and a transaction that commits after them
// commits after their writes: once it returns, both are read back.
func TestQueuedWritesLandBeforeTheNextCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	k := service.StoredKey{APIKey: service.APIKey{ID: "bbbbbbbbbbbb", Name: "ops", CreateTime: t0}}
	inTx(t, db, func(tx service.Tx) error { return tx.CreateKey(ctx, k) })
	for _, at := range []time.Duration{3 * time.Minute, 2 * time.Minute} {
		if err := db.TouchKey(ctx, k.ID, t0.Add(at)); err != nil {
			t.Fatalf("TouchKey: %v", err)
		}
	}
	refused := service.AuditEntry{Time: t0.Add(time.Minute), Peer: "10.0.0.1:1", Method: "GetCharge",
		Resource: "charges/T9", Outcome: "UNAUTHENTICATED"}
	failed := make(chan error, 1)
	if err := db.RecordAuditEntry(ctx, refused, func(err error) { failed <- err }); err != nil {
		t.Fatalf("RecordAuditEntry: %v", err)
	}
	inTx(t, db, func(service.Tx) error { return nil })
	keys, err := db.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("Keys: %d keys, %v; want 1", len(keys), err)
	}
	if got := keys[0].LastUsedTime; !got.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("LastUsedTime %v, want the later use %v", got, t0.Add(3*time.Minute))
	}
	es, _, err := db.ListAuditEntries(ctx, service.AuditFilter{PageSize: 10})
	if err != nil || len(es) != 1 || es[0].Resource != refused.Resource {
		t.Errorf("audit entries after the commit: %+v, %v; want the recorded one", es, err)
	}
	select {
	case err := <-failed:
		t.Errorf("RecordAuditEntry reported a failure: %v", err)
	default:
	}
}

// TestFirstOfBatchRollsBackAlone: the function that runs first in a batch
// has the transaction for its savepoint (runTx). When it fails or panics
// after writing, its writes are undone and nobody else's; the next one
// runs first again in a new transaction; a later one is back to its own
// savepoint.
func TestFirstOfBatchRollsBackAlone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	errFail := errors.New("fail")
	writeThen := func(id string, then func() error) func(*tx) error {
		return func(t *tx) error {
			if err := deliver(ctx, id)(t); err != nil {
				return err
			}
			return then()
		}
	}
	ok := func() error { return nil }
	got := runInOneBatch(t, db, []context.Context{ctx, ctx, ctx, ctx, ctx, ctx}, []func(*tx) error{
		writeThen("A", func() error { return errFail }),
		writeThen("B", func() error { panic("boom") }),
		writeThen("C", ok),
		writeThen("D", func() error { return errFail }),
		writeThen("E", ok),
		deliver(ctx, "C"), // sees C, written in this transaction
	})
	want := []batchResult{{err: errFail}, {panicked: true}, {}, {err: errFail}, {}, {err: errDuplicate}}
	for i := range want {
		if got[i].panicked != want[i].panicked || !errors.Is(got[i].err, want[i].err) || (want[i].err == nil && got[i].err != nil) {
			t.Errorf("caller %d: %v (panicked %v), want %v (panicked %v)", i, got[i].err, got[i].panicked, want[i].err, want[i].panicked)
		}
	}
	for id, want := range map[string]bool{"A": false, "B": false, "C": true, "D": false, "E": true} {
		if recorded(t, db, id) != want {
			t.Errorf("%s recorded: %v, want %v", id, !want, want)
		}
	}
}

// TestFirstOfBatchRolledBackBySQLite: when SQLite rolls the transaction
// back during the batch's first function, which has no savepoint, the
// batch fails for every caller and nothing commits, as for any other.
func TestFirstOfBatchRolledBackBySQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	inTx(t, db, func(tx service.Tx) error {
		return tx.InsertNotification(ctx, service.NotificationRecord{ID: "N0", Outcome: service.OutcomeApplied})
	})
	got := runInOneBatch(t, db, []context.Context{ctx, ctx}, []func(*tx) error{
		func(t *tx) error {
			_, err := t.q.ExecContext(context.Background(), `INSERT OR ROLLBACK INTO notifications
				(id, sp_mchid, sub_mchid, event_type, summary, outcome, out_contract_code, contract_id) VALUES ('N0', '', '', '', '', '', '', '')`)
			return err
		},
		deliver(ctx, "N1"),
	})
	for i, r := range got {
		if !errors.Is(r.err, errRolledBack) {
			t.Errorf("caller %d: %v, want the batch's rollback", i, r.err)
		}
	}
	if recorded(t, db, "N1") {
		t.Error("N1 recorded by a batch that did not commit")
	}
}
