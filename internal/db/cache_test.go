package db

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/papayd/papayd/internal/service"
)

var cacheEpoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// TestCacheServesReadsAndForgetsWrites: a second read is a hit; after a
// write's InTx returns, every lookup (by either key) answers the write; a
// rolled-back write changes nothing.
func TestCacheServesReadsAndForgetsWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	c := fullCharge("T1", "", cacheEpoch)
	c.State, c.TradeState = service.ChargeProcessing, service.TradeUserPaying
	inTx(t, db, func(tx service.Tx) error { return tx.CreateCharge(ctx, c) })

	for range 2 {
		got, err := db.ChargeByOutTradeNo(ctx, "T1")
		if err != nil || got.State != service.ChargeProcessing {
			t.Fatalf("ChargeByOutTradeNo = %v, %v", got.State, err)
		}
	}
	if s := db.CacheStats(); s.ChargeHits != 1 || s.ChargeMisses != 1 {
		t.Fatalf("cache stats %+v, want 1 hit and 1 miss", s)
	}

	// Settled: both keys answer the new state at once.
	c.State, c.TradeState, c.TransactionID = service.ChargeSucceeded, service.TradeSuccess, "X1"
	inTx(t, db, func(tx service.Tx) error { return tx.UpdateCharge(ctx, c) })
	for _, read := range []func() (service.Charge, error){
		func() (service.Charge, error) { return db.ChargeByOutTradeNo(ctx, "T1") },
		func() (service.Charge, error) { return db.ChargeByTransactionID(ctx, "X1") },
		func() (service.Charge, error) { return db.ChargeByTransactionID(ctx, "X1") }, // a hit
	} {
		got, err := read()
		if err != nil || got.State != service.ChargeSucceeded || got.TransactionID != "X1" {
			t.Fatalf("after the update: %v %q, %v", got.State, got.TransactionID, err)
		}
	}

	// A rolled-back write leaves the committed record.
	errNo := errors.New("no")
	err := db.InTx(ctx, func(tx service.Tx) error {
		c.State = service.ChargeClosed
		if err := tx.UpdateCharge(ctx, c); err != nil {
			return err
		}
		return errNo
	})
	if !errors.Is(err, errNo) {
		t.Fatal(err)
	}
	if got, err := db.ChargeByOutTradeNo(ctx, "T1"); err != nil || got.State != service.ChargeSucceeded {
		t.Fatalf("after a rollback: %v, %v", got.State, err)
	}

	// Agreements: by out_contract_code and by contract id, and a contract id
	// that moves is not found under the old one.
	a := fullAgreement("OCC1", "C1", cacheEpoch)
	inTx(t, db, func(tx service.Tx) error { return tx.CreateAgreement(ctx, a) })
	if _, err := db.AgreementByContractID(ctx, "C1"); err != nil {
		t.Fatal(err)
	}
	a.ContractID = "C2"
	inTx(t, db, func(tx service.Tx) error { return tx.UpdateAgreement(ctx, a) })
	if _, err := db.AgreementByContractID(ctx, "C1"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("old contract id after the update: %v, want ErrNotFound", err)
	}
	if got, err := db.AgreementByOutContractCode(ctx, "OCC1"); err != nil || got.ContractID != "C2" {
		t.Fatalf("AgreementByOutContractCode = %q, %v", got.ContractID, err)
	}
	inTx(t, db, func(tx service.Tx) error { return tx.DeleteAgreement(ctx, "OCC1") })
	if _, err := db.AgreementByOutContractCode(ctx, "OCC1"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("deleted agreement: %v, want ErrNotFound", err)
	}
}

// TestCacheNeverServesAnOverwrittenState: readers race writers; once a
// writer's InTx has returned, no read may answer an older value, and no
// read may answer an older value than a read that ended before it began
// (a reader that saw SUCCEEDED must not see PENDING next).
//
// To make the orderings that matter likely, the writer pauses after each
// COMMIT, before it forgets what the batch wrote and answers its callers,
// and some readers pause between their read of the database and their fill
// of the cache, as a descheduled goroutine would: a read whose snapshot
// predates a commit then fills the cache after it.
func TestCacheNeverServesAnOverwrittenState(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	db.ObserveCommits(func(int, time.Duration) { time.Sleep(time.Millisecond) })
	const keys, writes = 4, 60
	for k := range keys {
		a := fullAgreement(fmt.Sprintf("OCC%d", k), fmt.Sprintf("C%d", k), cacheEpoch)
		a.CheckAttempts = 0
		inTx(t, db, func(tx service.Tx) error { return tx.CreateAgreement(ctx, a) })
	}
	var committed [keys]struct {
		sync.Mutex
		n int // the highest CheckAttempts whose InTx returned
	}
	var seen [keys]atomic.Int64 // the highest CheckAttempts a read answered
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for k := range keys {
		wg.Go(func() { // the writer of key k
			for n := 1; n <= writes; n++ {
				err := db.InTx(ctx, func(tx service.Tx) error {
					a, err := tx.AgreementByOutContractCode(ctx, fmt.Sprintf("OCC%d", k))
					if err != nil {
						return err
					}
					a.CheckAttempts = n
					return tx.UpdateAgreement(ctx, a)
				})
				if err != nil {
					t.Error(err)
					return
				}
				committed[k].Lock()
				committed[k].n = n
				committed[k].Unlock()
			}
		})
	}
	// slowFill reads OCC<k> through the cache, pausing between its read of
	// the database and its fill.
	slowFill := func(k int) (service.Agreement, error) {
		code := fmt.Sprintf("OCC%d", k)
		return db.caches.agreements.through(code, false, func() (service.Agreement, error) {
			a, err := db.reader.AgreementByOutContractCode(ctx, code)
			time.Sleep(500 * time.Microsecond)
			return a, err
		})
	}
	var readers sync.WaitGroup
	for r := range 6 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i + r) % keys
				committed[k].Lock()
				floor := committed[k].n
				committed[k].Unlock()
				before := seen[k].Load()
				var a service.Agreement
				var err error
				switch {
				case r >= 4:
					a, err = slowFill(k)
				case i%2 == 0:
					a, err = db.AgreementByOutContractCode(ctx, fmt.Sprintf("OCC%d", k))
				default:
					a, err = db.AgreementByContractID(ctx, fmt.Sprintf("C%d", k))
				}
				if err != nil {
					t.Error(err)
					return
				}
				if got := int64(a.CheckAttempts); got < before {
					t.Errorf("read %d of OCC%d after a read of %d", got, k, before)
					return
				}
				if a.CheckAttempts < floor {
					t.Errorf("read %d of OCC%d after %d was committed", a.CheckAttempts, k, floor)
					return
				}
				for cur := seen[k].Load(); int64(a.CheckAttempts) > cur && !seen[k].CompareAndSwap(cur, int64(a.CheckAttempts)); {
					cur = seen[k].Load()
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if s := db.CacheStats(); s.AgreementHits == 0 {
		t.Errorf("no read was served from the cache: %+v", s)
	}
}

// TestRecordCache: a fill that began before a forget is dropped, and so is
// one of a record a batch in flight wrote; the cache keeps at most its
// limit; callers get copies.
func TestRecordCache(t *testing.T) {
	t.Parallel()
	c := newCaches(3).charges
	ch := fullCharge("T1", "X1", cacheEpoch)

	since := c.begin()
	c.forget("T9") // any write meanwhile
	c.fill(ch, since)
	if _, ok := c.get("T1"); ok {
		t.Fatal("a fill that raced a write was kept")
	}

	// Between a batch's COMMIT and its forget, a read whose snapshot predates
	// the commit may fill; other reads may have answered the write already.
	c.write("T1")
	since = c.begin()
	c.fill(ch, since)
	if _, ok := c.get("T1"); ok {
		t.Fatal("a fill of a record being written was kept")
	}
	c.forget("T1")

	c.fill(ch, c.begin())
	got, ok := c.getBySecond("X1")
	if !ok {
		t.Fatal("not filled")
	}
	got.PromotionDetail[0].GoodsDetail[0].GoodsID = "changed"
	if again, _ := c.get("T1"); !cmp.Equal(again, ch) {
		t.Fatal("a caller's change reached the cache")
	}

	for i := range 10 {
		c.fill(fullCharge(fmt.Sprintf("T%d", i+2), fmt.Sprintf("X%d", i+2), cacheEpoch), c.begin())
	}
	if n := len(c.records); n != 3 {
		t.Fatalf("%d records kept, limit 3", n)
	}
	if n := len(c.seconds); n > 3 {
		t.Fatalf("%d second keys kept, limit 3", n)
	}
}

// TestCacheOff: with CacheRecords 0 every read goes to the database.
func TestCacheOff(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := OpenWith(ctx, t.TempDir()+"/papayd.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := fullAgreement("OCC1", "C1", cacheEpoch)
	inTx(t, db, func(tx service.Tx) error { return tx.CreateAgreement(ctx, a) })
	for range 3 {
		if _, err := db.AgreementByContractID(ctx, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	if s := db.CacheStats(); s.AgreementHits != 0 || s.AgreementMisses != 3 {
		t.Fatalf("cache stats %+v, want 3 misses", s)
	}
}
