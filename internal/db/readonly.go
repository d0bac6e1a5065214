package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/papayd/papayd/internal/service"
)

// Reader reads a papayd database without writing to it: for tools such as
// `papayd verify` that run beside a serving papayd. It neither creates nor
// migrates the file, and has no record cache.
type Reader struct {
	reader
	conn *sql.DB
}

var _ service.Records = (*Reader)(nil)

// OpenReader opens the existing database file at path read-only. The file
// must be at the schema version of this binary: an older one is refused
// (start papayd on it once to migrate it), as is a newer one
// (ErrSchemaTooNew).
func OpenReader(ctx context.Context, path string) (*Reader, error) {
	c, version, newest, err := openSource(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open database %s read-only: %w", path, err)
	}
	if version != newest {
		c.Close()
		return nil, fmt.Errorf("open database %s read-only: schema version %d, this papayd reads %d: start papayd on it once to migrate it",
			path, version, newest)
	}
	return &Reader{reader: reader{q: c}, conn: c}, nil
}

// Close closes the connection.
func (r *Reader) Close() error { return r.conn.Close() }
