package db

import (
	"context"
	"database/sql"

	"github.com/papayd/papayd/internal/service"
)

// querier is what *sql.DB and *sql.Tx have in common: the read methods run
// on either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader implements service.AgreementReader, service.ChargeReader and
// service.RefundReader over a querier: the read pool for *DB, the
// transaction for tx.
type reader struct {
	q querier
}

var (
	_ service.AgreementReader = reader{}
	_ service.ChargeReader    = reader{}
	_ service.RefundReader    = reader{}
	_ service.Tx              = (*tx)(nil)
)

// tx implements service.Tx on one write transaction.
type tx struct {
	reader  // q is the *sql.Tx; the write methods use it too
	caches  *caches
	touched *touched // the batch's written records (see cache.go)
	// appended are the events this function appended, as stored (id and
	// sequence set, resources copied), and sequence the highest sequence
	// they were given.
	appended []service.Event
	sequence int64
	// charge, agreement and refund are the rows of the charge, the
	// agreement and the refund this function last read or wrote, as
	// stored (see rowMemo).
	charge    rowMemo[service.Charge, chargeKind]
	agreement rowMemo[service.Agreement, agreementKind]
	refund    rowMemo[service.Refund, refundKind]
}

// InTx runs fn in one write transaction (BEGIN IMMEDIATE): its changes
// commit when fn returns nil and roll back when fn returns an error, which
// InTx returns unchanged, or panics (the panic is re-raised in the caller).
// Transactions of concurrent callers may share one commit (group commit,
// see batch.go), each inside its own savepoint; InTx returns only after the
// commit. If that shared transaction does not commit, InTx returns its
// failure instead of fn's result, even when fn returned an error of its own
// (a sentinel such as "already recorded" may rest on another caller's
// write that was rolled back); a panic is still re-raised. fn's statements
// are not interrupted when ctx ends (that would roll back every caller's
// transaction): one that starts after ctx ended fails with ctx's error.
// fn must not call InTx or RecordWeChatCall (it would wait for itself),
// must not keep the service.Tx after it returns, and must not block on
// anything but the database.
func (db *DB) InTx(ctx context.Context, fn func(service.Tx) error) error {
	return db.writer.do(ctx, func(t *tx) error { return fn(t) })
}
