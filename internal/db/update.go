package db

import (
	"context"
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

// updateKey identifies the text of one update.
type updateKey struct {
	table string
	set   changedColumns
	byID  bool
}

// updateSQL caches the texts of updateQuery.
var updateSQL sync.Map // updateKey -> string

// updateChangedQuery is the UPDATE of table's columns in set (of cols),
// their values first, then the row's id and its key column's value. The
// writer prepares each text once, and only a few sets occur (a record's
// life has few transitions). The id finds the row in the table's b-tree
// without a lookup of the key's index; the key makes an id that is not
// the record's match nothing instead of another row.
func updateChangedQuery[T any](table, key string, cols []column[T], set changedColumns) string {
	return updateQuery(table, key, cols, set, true)
}

// updateAllQuery is the UPDATE of every column of cols, their values
// first, then the key column's value: the update of a row the function
// has not read.
func updateAllQuery[T any](table, key string, cols []column[T]) string {
	return updateQuery(table, key, cols, 1<<len(cols)-1, false)
}

// updateQuery is the UPDATE of table's columns in set (of cols), their
// values first, then, when byID is set, the row's id, and its key
// column's value.
func updateQuery[T any](table, key string, cols []column[T], set changedColumns, byID bool) string {
	k := updateKey{table, set, byID}
	if q, ok := updateSQL.Load(k); ok {
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
	b.WriteString(" WHERE ")
	if byID {
		b.WriteString("id = ? AND ")
	}
	b.WriteString(key + " = ?")
	q, _ := updateSQL.LoadOrStore(k, b.String())
	return q.(string)
}

// updateRow writes the columns cols of next (a record's life: the fields
// it changes after its creation; the others are never written again) to
// table's row whose key column holds keyValue. When prev is the row as
// stored (the function read it, as the row with id), it writes only the
// columns whose value differs, and nothing when none does (the row exists,
// since prev was read); else every column of cols. It fails with
// service.ErrNotFound when there is no such row.
func updateRow[T any](ctx context.Context, q querier, table, key, keyValue string, cols []column[T], prev *T, id int64, next *T) error {
	var query string
	var args []any
	if prev != nil {
		set, changed, err := changes(cols, prev, next)
		if err != nil || set == 0 {
			return err
		}
		query, args = updateChangedQuery(table, key, cols, set), append(changed, id, keyValue)
	} else {
		query, args = updateAllQuery(table, key, cols), make([]any, 0, len(cols)+1)
		for _, col := range cols {
			v, err := col.value(next)
			if err != nil {
				return err
			}
			args = append(args, v)
		}
		args = append(args, keyValue)
	}
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return oneRow(res)
}
