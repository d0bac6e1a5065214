package db

import (
	"errors"
	"fmt"
	"testing"

	"github.com/papayd/papayd/internal/service"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// TestUniqueViolationByResultCode pins that duplicates are recognised by
// SQLite's extended result code, and only by it: other constraint
// failures share the primary code SQLITE_CONSTRAINT, and a message that
// merely reads like one is not one.
func TestUniqueViolationByResultCode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openTestDB(t)
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE, n TEXT NOT NULL) STRICT;
		INSERT INTO t VALUES ('k', 'u', 'n')`); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) error {
		_, err := db.write.ExecContext(ctx, q)
		if err == nil {
			t.Fatalf("%s succeeded", q)
		}
		return fmt.Errorf("wrapped: %w", err)
	}
	tests := []struct {
		name     string
		err      error
		wantCode int // 0: not a *sqlite.Error
		want     bool
	}{
		{"primary key", exec(`INSERT INTO t VALUES ('k', 'x', 'n')`), sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, true},
		{"unique", exec(`INSERT INTO t VALUES ('x', 'u', 'n')`), sqlite3.SQLITE_CONSTRAINT_UNIQUE, true},
		{"not null", exec(`INSERT INTO t VALUES ('y', 'y', NULL)`), sqlite3.SQLITE_CONSTRAINT_NOTNULL, false},
		{"unique message text", errors.New("constraint failed: UNIQUE constraint failed: t.u (2067)"), 0, false},
	}
	for _, tt := range tests {
		var se *sqlite.Error
		code := 0
		if errors.As(tt.err, &se) {
			code = se.Code()
		}
		if code != tt.wantCode {
			t.Errorf("%s: result code %d, want %d", tt.name, code, tt.wantCode)
		}
		if got := isUniqueViolation(tt.err); got != tt.want {
			t.Errorf("%s: isUniqueViolation(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
		if got := errors.Is(conflictOr(tt.err), service.ErrConflict); got != tt.want {
			t.Errorf("%s: conflictOr is ErrConflict = %v, want %v", tt.name, got, tt.want)
		}
	}
}
