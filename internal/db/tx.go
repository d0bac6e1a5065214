package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

// querier is what *sql.DB and *sql.Tx have in common: the read methods run
// on either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader implements service.AgreementReader and service.ChargeReader over
// a querier: the read pool for *DB, the transaction for tx.
type reader struct {
	q querier
}

var (
	_ service.AgreementReader = reader{}
	_ service.ChargeReader    = reader{}
	_ service.Tx              = (*tx)(nil)
)

// tx implements service.Tx on one write transaction.
type tx struct {
	reader // q is the *sql.Tx; the write methods use it too
}

// InTx runs fn in one write transaction (BEGIN IMMEDIATE): it commits when
// fn returns nil and rolls back when fn returns an error, which it returns
// unchanged, or panics. Write transactions are serialised on the single
// writer connection; InTx waits for it as long as ctx allows. fn must not
// call InTx or RecordWeChatCall (they would wait for the connection fn
// holds), and must not keep the service.Tx after it returns.
func (db *DB) InTx(ctx context.Context, fn func(service.Tx) error) error {
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // no-op after Commit
	if err := fn(&tx{reader{q: sqlTx}}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
