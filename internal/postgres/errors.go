package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/papayd/papayd/internal/service"
)

// The SQLSTATEs this package acts on.
const (
	uniqueViolation      = "23505"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// sqlState returns the SQLSTATE of the PostgreSQL error in err's chain, or
// "" when there is none.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// conflictOr returns err as service.ErrConflict when it is a unique
// violation, keeping the PostgreSQL error (which names the key) for the
// logs.
func conflictOr(err error) error {
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("%w: %w", service.ErrConflict, err)
	}
	return err
}

// notFoundOr returns err as service.ErrNotFound when it is pgx's "no rows".
func notFoundOr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return service.ErrNotFound
	}
	return err
}

// retryable reports whether err aborted a transaction that may succeed
// when run again: a serialization failure or a deadlock.
func retryable(err error) bool {
	switch sqlState(err) {
	case serializationFailure, deadlockDetected:
		return true
	}
	return false
}
