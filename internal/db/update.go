package db

import (
	"database/sql/driver"
	"strings"
	"sync"
)

// Updates that name only what changed. SQLite rewrites the entry of every
// index a column named in an UPDATE's SET belongs to (a delete and an
// insert, each dirtying a page the commit then writes to the WAL and the
// checkpoint to the database), whether its value changed or not. A write
// method that knows the row as stored (its transaction's function read it)
// therefore names only the columns whose stored value differs.

// column is one column an update may write, with its stored value in a
// record of type T.
type column[T any] struct {
	name  string
	value func(*T) (driver.Value, error)
}

// changedColumns is a set of columns of a list, bit i for the i-th.
type changedColumns uint32

// changes returns the columns of cols whose stored value differs between
// prev, the row as stored, and next, with next's values in order.
func changes[T any](cols []column[T], prev, next *T) (changedColumns, []any, error) {
	var set changedColumns
	var args []any
	for i, col := range cols {
		v, err := col.value(next)
		if err != nil {
			return 0, nil, err
		}
		was, err := col.value(prev)
		if err != nil {
			return 0, nil, err
		}
		if v != was { // int64, string or nil: comparable
			set |= 1 << i
			args = append(args, v)
		}
	}
	return set, args, nil
}

// updateChangedKey identifies the text of one update of changed columns.
type updateChangedKey struct {
	table string
	set   changedColumns
}

// updateChangedSQL caches the texts of updateChangedQuery.
var updateChangedSQL sync.Map // updateChangedKey -> string

// updateChangedQuery is the UPDATE of table's columns in set (of cols),
// their values first, then the row's id and its key column's value. The
// writer prepares each text once, and only a few sets occur (a record's
// life has few transitions). The id finds the row in the table's b-tree
// without a lookup of the key's index; the key makes an id that is not
// the record's match nothing instead of another row.
func updateChangedQuery[T any](table, key string, cols []column[T], set changedColumns) string {
	k := updateChangedKey{table, set}
	if q, ok := updateChangedSQL.Load(k); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString("UPDATE " + table + " SET ")
	sep := ""
	for i, col := range cols {
		if set&(1<<i) != 0 {
			b.WriteString(sep + col.name + " = ?")
			sep = ", "
		}
	}
	b.WriteString(" WHERE id = ? AND " + key + " = ?")
	q, _ := updateChangedSQL.LoadOrStore(k, b.String())
	return q.(string)
}
