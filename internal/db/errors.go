package db

import (
	"errors"
	"fmt"

	"github.com/papayd/papayd/internal/service"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// isUniqueViolation reports whether err is SQLite refusing a duplicate
// PRIMARY KEY or UNIQUE key. It reads the extended result code (the driver
// turns extended codes on for every connection), never the message.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// conflictOr returns err as service.ErrConflict when it is a unique-key
// violation, keeping the SQLite error (which names the key) for the logs.
func conflictOr(err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %w", service.ErrConflict, err)
	}
	return err
}
