package db

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/papayd/papayd/internal/service"
)

// The record cache. Reads of one agreement or one charge outside a
// transaction (GetAgreement, GetCharge: the calls merchants poll) are
// served from memory when the record was read recently, and from the read
// pool otherwise. It is exact, not eventually consistent, because this
// process is the database's only writer (see doc.go) and every write goes
// through a tx:
//
//   - a tx write forgets the record at once and marks it written; after
//     its batch commits or rolls back, before InTx returns to its caller,
//     the record is forgotten again and the mark removed;
//   - a read fills the cache only if nothing was forgotten since the read
//     began and the record is not marked, so a fill racing a write is
//     dropped instead of kept stale. The mark matters between the COMMIT
//     and the forget after it: a read whose snapshot predates the commit
//     may end there, and its fill would bring back the state before the
//     write after other reads already answered the write.
//
// A reader therefore sees a committed write once the InTx that made it has
// returned, as it would reading the database; between the commit and that
// return it may still see the record before the write, as it could anyway,
// but never after a read that saw the write ended. Reads inside a
// transaction never use the cache.

// DefaultCacheRecords bounds each of the two caches (agreements, charges).
// A record read from the database costs about 1.4 KiB of heap, so both
// hold at most about 45 MiB.
const DefaultCacheRecords = 16384

// recordCache holds records of one kind by their primary key (the
// merchant's number) and a second key (WeChat's id), evicting a random
// record when full.
type recordCache[T any] struct {
	primary func(T) string
	second  func(T) string // "" when the record has none yet
	clone   func(T) T      // a copy sharing nothing mutable

	mu      sync.Mutex
	limit   int
	gen     uint64 // counts forgets: a fill that began before one is dropped
	records map[string]T
	seconds map[string]string // second key -> primary key
	writing map[string]bool   // primary keys the batch in flight wrote: never filled

	hits, misses atomic.Uint64
}

func newRecordCache[T any](limit int, primary, second func(T) string, clone func(T) T) *recordCache[T] {
	return &recordCache[T]{primary: primary, second: second, clone: clone, limit: limit,
		records: map[string]T{}, seconds: map[string]string{}, writing: map[string]bool{}}
}

// get returns the record with primary key k.
func (c *recordCache[T]) get(k string) (T, bool) {
	c.mu.Lock()
	v, ok := c.records[k]
	c.mu.Unlock()
	return c.counted(v, ok)
}

// getBySecond returns the record whose second key is k.
func (c *recordCache[T]) getBySecond(k string) (T, bool) {
	c.mu.Lock()
	v, ok := c.records[c.seconds[k]]
	ok = ok && c.second(v) == k
	c.mu.Unlock()
	return c.counted(v, ok)
}

func (c *recordCache[T]) counted(v T, ok bool) (T, bool) {
	if !ok {
		c.misses.Add(1)
		var zero T
		return zero, false
	}
	c.hits.Add(1)
	return c.clone(v), true
}

// begin starts a read that may fill the cache.
func (c *recordCache[T]) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// fill keeps v, read from the database after begin returned since, unless
// a record was forgotten in the meantime or v's is being written.
func (c *recordCache[T]) fill(v T, since uint64) {
	if c.limit <= 0 {
		return
	}
	k := c.primary(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != since || c.writing[k] {
		return
	}
	if _, ok := c.records[k]; !ok && len(c.records) >= c.limit {
		for evict := range c.records { // map order: a random victim
			c.drop(evict)
			break
		}
	}
	c.records[k] = c.clone(v)
	if s := c.second(v); s != "" {
		c.seconds[s] = k
	}
}

// write forgets the record with primary key k, which the batch in flight
// writes, and keeps it from being filled until forget(k).
func (c *recordCache[T]) write(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.drop(k)
	c.writing[k] = true
}

// forget drops the record with primary key k, which the last batch may
// have written, and lets it be filled again.
func (c *recordCache[T]) forget(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.drop(k)
	delete(c.writing, k)
}

func (c *recordCache[T]) drop(k string) {
	v, ok := c.records[k]
	if !ok {
		return
	}
	delete(c.records, k)
	if s := c.second(v); s != "" && c.seconds[s] == k {
		delete(c.seconds, s)
	}
}

// caches are the record caches of one DB.
type caches struct {
	agreements *recordCache[service.Agreement]
	charges    *recordCache[service.Charge]
}

func newCaches(limit int) *caches {
	return &caches{
		agreements: newRecordCache(limit,
			func(a service.Agreement) string { return a.OutContractCode },
			func(a service.Agreement) string { return a.ContractID },
			func(a service.Agreement) service.Agreement { return a }),
		charges: newRecordCache(limit,
			func(c service.Charge) string { return c.OutTradeNo },
			func(c service.Charge) string { return c.TransactionID },
			cloneCharge),
	}
}

// cloneCharge copies c's promotion detail, the only mutable data it shares.
func cloneCharge(c service.Charge) service.Charge {
	if c.PromotionDetail != nil {
		p := slices.Clone(c.PromotionDetail)
		for i := range p {
			p[i].GoodsDetail = slices.Clone(p[i].GoodsDetail)
		}
		c.PromotionDetail = p
	}
	return c
}

// touched are the records a batch's transactions wrote; the writer forgets
// them again once the batch has committed or rolled back.
type touched struct {
	agreements, charges []string
}

func (t *tx) touchAgreement(outContractCode string) {
	t.caches.agreements.write(outContractCode)
	t.touched.agreements = append(t.touched.agreements, outContractCode)
}

func (t *tx) touchCharge(outTradeNo string) {
	t.caches.charges.write(outTradeNo)
	t.touched.charges = append(t.touched.charges, outTradeNo)
}

// forgetTouched runs after a batch ended, before its callers are answered.
func (c *caches) forgetTouched(t *touched) {
	for _, k := range t.agreements {
		c.agreements.forget(k)
	}
	for _, k := range t.charges {
		c.charges.forget(k)
	}
	t.agreements, t.charges = t.agreements[:0], t.charges[:0]
}

// through answers the record with key k (its second key when bySecond)
// from the cache, else from read, keeping what read found.
func (c *recordCache[T]) through(k string, bySecond bool, read func() (T, error)) (T, error) {
	get := c.get
	if bySecond {
		get = c.getBySecond
	}
	if v, ok := get(k); ok {
		return v, nil
	}
	since := c.begin()
	v, err := read()
	if err == nil {
		c.fill(v, since)
	}
	return v, err
}

// AgreementByOutContractCode is reader.AgreementByOutContractCode through
// the cache.
func (db *DB) AgreementByOutContractCode(ctx context.Context, outContractCode string) (service.Agreement, error) {
	return db.caches.agreements.through(outContractCode, false, func() (service.Agreement, error) {
		return db.reader.AgreementByOutContractCode(ctx, outContractCode)
	})
}

// AgreementByContractID is reader.AgreementByContractID through the cache.
func (db *DB) AgreementByContractID(ctx context.Context, contractID string) (service.Agreement, error) {
	return db.caches.agreements.through(contractID, true, func() (service.Agreement, error) {
		return db.reader.AgreementByContractID(ctx, contractID)
	})
}

// ChargeByOutTradeNo is reader.ChargeByOutTradeNo through the cache.
func (db *DB) ChargeByOutTradeNo(ctx context.Context, outTradeNo string) (service.Charge, error) {
	return db.caches.charges.through(outTradeNo, false, func() (service.Charge, error) {
		return db.reader.ChargeByOutTradeNo(ctx, outTradeNo)
	})
}

// ChargeByTransactionID is reader.ChargeByTransactionID through the cache.
func (db *DB) ChargeByTransactionID(ctx context.Context, transactionID string) (service.Charge, error) {
	return db.caches.charges.through(transactionID, true, func() (service.Charge, error) {
		return db.reader.ChargeByTransactionID(ctx, transactionID)
	})
}

// CacheStats counts lookups of the record caches since Open.
type CacheStats struct {
	AgreementHits, AgreementMisses, ChargeHits, ChargeMisses uint64
}

// CacheStats returns the record caches' hit and miss counts.
func (db *DB) CacheStats() CacheStats {
	return CacheStats{
		AgreementHits: db.caches.agreements.hits.Load(), AgreementMisses: db.caches.agreements.misses.Load(),
		ChargeHits: db.caches.charges.hits.Load(), ChargeMisses: db.caches.charges.misses.Load(),
	}
}
