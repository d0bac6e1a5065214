package db

import (
	"context"
	"database/sql"
	"sync"
)

// stmtQuerier runs reads on the read pool through prepared statements
// cached by query text: SQLite parses and plans each query once per pooled
// connection instead of once per call (modernc's SQLite spends a large
// share of a point read preparing it).
type stmtQuerier struct {
	db *sql.DB

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

var _ querier = (*stmtQuerier)(nil)

func newStmtQuerier(db *sql.DB) *stmtQuerier {
	return &stmtQuerier{db: db, stmts: map[string]*sql.Stmt{}}
}

// stmt returns the prepared statement of query, preparing it on first use.
func (q *stmtQuerier) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	q.mu.RLock()
	s := q.stmts[query]
	q.mu.RUnlock()
	if s != nil {
		return s, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.stmts[query]; s != nil {
		return s, nil
	}
	s, err := q.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.stmts[query] = s
	return s, nil
}

func (q *stmtQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (q *stmtQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (q *stmtQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := q.stmt(ctx, query)
	if err != nil {
		// *sql.Row cannot carry an error from here: let the pool report it.
		return q.db.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// close closes the cached statements.
func (q *stmtQuerier) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k, s := range q.stmts {
		_ = s.Close()
		delete(q.stmts, k)
	}
}
