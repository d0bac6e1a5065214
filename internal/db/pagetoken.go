package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/papayd/papayd/internal/pagetoken"
)

// The page tokens are internal/pagetoken's, as in every store.
type cursor = pagetoken.Cursor

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// queryPage runs a page query, whose last parameter is the row limit
// (pageSize+1: the extra row tells whether a next page exists), and
// returns the page and the token of the next ("" on the last). scan reads
// one row and its cursor; filter is the hash the token is bound to.
func queryPage[T any](ctx context.Context, q querier, query string, args []any, pageSize int, filter uint64,
	scan func(rowScanner) (T, cursor, error)) ([]T, string, error) {
	if pageSize < 1 {
		return nil, "", fmt.Errorf("page size %d is not positive", pageSize)
	}
	args = append(args, sql.Named("limit", pageSize+1))
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var (
		page []T
		last cursor
	)
	for rows.Next() {
		v, c, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		if len(page) == pageSize {
			return page, pagetoken.Encode(filter, last), nil // the extra row: there is a next page
		}
		page, last = append(page, v), c
	}
	return page, "", rows.Err()
}
