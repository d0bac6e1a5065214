package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/papayd/papayd/internal/service"
)

// reader is what a store and a transaction both read: agreements, charges
// and refunds.
type reader interface {
	service.AgreementReader
	service.ChargeReader
	service.RefundReader
}

// record is a kind of record with two keys: the merchant's own (key),
// unique and never empty, and WeChat Pay's (id), unique when set and
// empty until WeChat Pay gives one. Agreements, charges and refunds are
// such records; the tests of record run on each alike.
type record[R any] struct {
	kind           string // "charge"
	keyName        string // "out_trade_no"
	idName         string // "transaction id"
	keyPre, idPre  string // the prefixes of the keys and ids the tests make: "T", "X"
	full           func(key, id string, created time.Time) R
	zero           func(key string, created time.Time) R // only the key and create time set
	withNextCheck  func(r R, next time.Time) R
	keys           func(r R) (key, id string)
	times          func(r R) map[string]time.Time
	create, update func(t *testing.T, tx service.Tx, r R) error
	byKey, byID    func(t *testing.T, r reader, key string) (R, error)
}

// k and i are the i-th key and id of rec's tests.
func (rec record[R]) k(i int) string { return fmt.Sprint(rec.keyPre, i) }
func (rec record[R]) i(i int) string { return fmt.Sprint(rec.idPre, i) }

// tests are the subtests of rec, named after its kind.
func (rec record[R]) tests(name string) []test {
	return []test{
		{name + "ZeroValues", rec.testZeroValues},
		{name + "NeedsCreateTime", rec.testNeedsCreateTime},
		{name + "TimeOutOfRange", rec.testTimeOutOfRange},
		{name + "Conflicts", rec.testConflicts},
		{name + "NotFound", rec.testNotFound},
	}
}

// createAll inserts rs in one transaction and fails the test on error.
func (rec record[R]) createAll(t *testing.T, s service.Store, rs ...R) {
	t.Helper()
	inTx(t, s, func(tx service.Tx) error {
		for _, r := range rs {
			if err := rec.create(t, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// check fails the test unless s reads want, by each of its keys, outside
// and inside a transaction, with its times in UTC.
func (rec record[R]) check(t *testing.T, s service.Store, step string, want R) {
	t.Helper()
	key, id := rec.keys(want)
	read := func(where string, r reader) {
		t.Helper()
		got, err := rec.byKey(t, r, key)
		if err != nil {
			t.Fatalf("%s: %s by %s on %s: %v", step, rec.kind, rec.keyName, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %s by %s on %s (-want +got):\n%s", step, rec.kind, rec.keyName, where, diff)
		}
		checkUTC(t, step, rec.times(got))
		if id == "" {
			return
		}
		got, err = rec.byID(t, r, id)
		if err != nil {
			t.Fatalf("%s: %s by %s on %s: %v", step, rec.kind, rec.idName, where, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %s by %s on %s (-want +got):\n%s", step, rec.kind, rec.idName, where, diff)
		}
	}
	read("store", s)
	inTx(t, s, func(tx service.Tx) error {
		read("tx", tx)
		return nil
	})
}

// testZeroValues: a record of only its key and create time reads back
// as such: its zero times zero, its empty lists nil.
func (rec record[R]) testZeroValues(t *testing.T, open Opener) {
	s := open(t)
	r := rec.zero(rec.k(0), time.Unix(0, 1).UTC())
	rec.createAll(t, s, r)
	rec.check(t, s, "zero values", r)
}

func (rec record[R]) testNeedsCreateTime(t *testing.T, open Opener) {
	s := open(t)
	err := s.InTx(t.Context(), func(tx service.Tx) error { return rec.create(t, tx, rec.zero(rec.k(0), time.Time{})) })
	if err == nil {
		t.Fatalf("create a %s without a create time: err = nil, want an error", rec.kind)
	}
	_, err = rec.byKey(t, s, rec.k(0))
	checkErr(t, "the refused "+rec.kind, err, service.ErrNotFound)
}

// testTimeOutOfRange: times a store cannot hold to the nanosecond (before
// 1677 or after 2262) are refused, not stored changed.
func (rec record[R]) testTimeOutOfRange(t *testing.T, open Opener) {
	s := open(t)
	late, early := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	stored := rec.full(rec.k(1), "", base)
	rec.createAll(t, s, stored)
	for _, tt := range []struct {
		name string
		op   func(tx service.Tx) error
	}{
		{"create time after 2262", func(tx service.Tx) error { return rec.create(t, tx, rec.full(rec.k(2), "", late)) }},
		{"create time before 1677", func(tx service.Tx) error { return rec.create(t, tx, rec.full(rec.k(2), "", early)) }},
		{"check time after 2262", func(tx service.Tx) error {
			return rec.create(t, tx, rec.withNextCheck(rec.full(rec.k(2), "", base), late))
		}},
		{"update to a check time before 1677", func(tx service.Tx) error {
			return rec.update(t, tx, rec.withNextCheck(rec.full(rec.k(1), "", base), early))
		}},
	} {
		if err := s.InTx(t.Context(), tt.op); err == nil {
			t.Errorf("%s: err = nil, want an error", tt.name)
		}
	}
	_, err := rec.byKey(t, s, rec.k(2))
	checkErr(t, "a refused "+rec.kind, err, service.ErrNotFound)
	rec.check(t, s, "after the refused update", stored)
}

// testConflicts: each key is unique, the id only when set; a refused
// write changes nothing.
func (rec record[R]) testConflicts(t *testing.T, open Opener) {
	full := func(k, i int) R {
		id := ""
		if i > 0 {
			id = rec.i(i)
		}
		return rec.full(rec.k(k), id, base)
	}
	create := func(r R) func(*testing.T, service.Tx) error {
		return func(t *testing.T, tx service.Tx) error { return rec.create(t, tx, r) }
	}
	update := func(r R) func(*testing.T, service.Tx) error {
		return func(t *testing.T, tx service.Tx) error { return rec.update(t, tx, r) }
	}
	later := rec.full(rec.k(1), rec.i(1), base.Add(time.Hour))
	tests := []struct {
		name     string
		existing []R
		op       func(t *testing.T, tx service.Tx) error
		want     error
	}{
		{"duplicate " + rec.keyName, []R{full(1, 1)}, create(full(1, 2)), service.ErrConflict},
		{"duplicate " + rec.keyName + ", both without " + rec.idName, []R{full(1, 0)}, create(full(1, 0)), service.ErrConflict},
		{"duplicate " + rec.idName, []R{full(1, 1)}, create(full(2, 1)), service.ErrConflict},
		{"two empty " + rec.idName + "s", []R{full(1, 0)}, create(full(2, 0)), nil},
		{"update to another " + rec.kind + "'s " + rec.idName, []R{full(1, 1), full(2, 0)}, update(full(2, 1)), service.ErrConflict},
		{"update keeping its own " + rec.idName, []R{full(1, 1)}, update(later), nil},
		{"update missing", []R{full(1, 1)}, update(full(2, 2)), service.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			rec.createAll(t, s, tt.existing...)
			err := s.InTx(t.Context(), func(tx service.Tx) error { return tt.op(t, tx) })
			checkErr(t, "InTx", err, tt.want)
			if tt.want == nil {
				return
			}
			for _, want := range tt.existing {
				rec.check(t, s, "after a refused write", want)
			}
		})
	}
}

// testNotFound: unknown and empty keys and ids find nothing; in
// particular the empty id does not find a record without one.
func (rec record[R]) testNotFound(t *testing.T, open Opener) {
	s := open(t)
	rec.createAll(t, s, rec.full(rec.k(1), "", base))
	for _, tt := range []struct {
		name string
		get  func(t *testing.T, r reader, key string) (R, error)
		key  string
	}{
		{"unknown " + rec.keyName, rec.byKey, "nope"},
		{"empty " + rec.keyName, rec.byKey, ""},
		{"unknown " + rec.idName, rec.byID, "nope"},
		{"empty " + rec.idName, rec.byID, ""},
	} {
		_, err := tt.get(t, s, tt.key)
		checkErr(t, tt.name+" on the store", err, service.ErrNotFound)
		inTx(t, s, func(tx service.Tx) error {
			_, err := tt.get(t, tx, tt.key)
			checkErr(t, tt.name+" in a tx", err, service.ErrNotFound)
			return nil
		})
	}
}
