package db

import (
	"database/sql"
	"database/sql/driver"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// rowMemo is the row of one record as a transaction's function last read
// or wrote it, and its id. Only this function writes the database while it
// runs, and every write of the record goes through the tx's methods, which
// forget the memo (and then keep the row they stored), so the memo is the
// row as stored until the function ends. K tells the record's key and how
// to copy it.
type rowMemo[T any, K recordKind[T]] struct {
	ok bool
	id int64
	v  T
}

// recordKind is a record type's key (its merchant number) and a copy of a
// record that shares nothing mutable with it.
type recordKind[T any] interface {
	key(T) string
	clone(T) T
}

func (m *rowMemo[T, K]) keep(v T, id int64) {
	var k K
	m.ok, m.id, m.v = true, id, k.clone(v)
}

func (m *rowMemo[T, K]) forget() { *m = rowMemo[T, K]{} }

// get returns a copy of the memo and its id if it is the record with key.
func (m *rowMemo[T, K]) get(key string) (T, int64, bool) {
	var k K
	if !m.ok || k.key(m.v) != key {
		var zero T
		return zero, 0, false
	}
	return k.clone(m.v), m.id, true
}

// read returns the record with key: the memo's copy when it holds it, else
// what read returns, which it then keeps.
func (m *rowMemo[T, K]) read(key string, read func() (T, int64, error)) (T, error) {
	if v, _, ok := m.get(key); ok {
		return v, nil
	}
	v, id, err := read()
	if err == nil {
		m.keep(v, id)
	}
	return v, err
}

type (
	chargeKind    struct{}
	agreementKind struct{}
	refundKind    struct{}
)

func (chargeKind) key(c service.Charge) string                    { return c.OutTradeNo }
func (chargeKind) clone(c service.Charge) service.Charge          { return cloneCharge(c) }
func (agreementKind) key(a service.Agreement) string              { return a.OutContractCode }
func (agreementKind) clone(a service.Agreement) service.Agreement { return a } // nothing mutable
func (refundKind) key(r service.Refund) string                    { return r.OutRefundNo }
func (refundKind) clone(r service.Refund) service.Refund          { return r } // nothing mutable

// storedField is a field with the Valuer that writes its column and the
// Scanner that reads it back into the field.
type storedField struct {
	arg  driver.Valuer
	dest sql.Scanner
}

// timeField is the storedField of the time *t.
func timeField(t *time.Time) storedField { return storedField{timeArg(*t), timeDest{t}} }

// asStored sets each field to what a read of its stored value returns
// (times in UTC to the nanosecond, nil for no promotion detail): the
// record as a read of its row returns it.
func asStored(fields ...storedField) error {
	for _, f := range fields {
		v, err := f.arg.Value()
		if err != nil {
			return err
		}
		if err := f.dest.Scan(v); err != nil {
			return err
		}
	}
	return nil
}
