package postgres

import (
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// The instants an int64 of nanoseconds can hold (years 1677 to 2262).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timeArg binds a time.Time to a time column (BIGINT): unix nanoseconds
// UTC, NULL for the zero time, as internal/db stores it.
type timeArg time.Time

// Int64Value implements pgtype.Int64Valuer.
func (t timeArg) Int64Value() (pgtype.Int8, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return pgtype.Int8{}, nil
	}
	if tt.Before(minTime) || tt.After(maxTime) {
		return pgtype.Int8{}, fmt.Errorf("time %s is outside the storable range", tt.UTC().Format(time.RFC3339))
	}
	return pgtype.Int8{Int64: tt.UnixNano(), Valid: true}, nil
}

// timeDest scans a time column into *t: NULL is the zero time, anything
// else comes back in UTC.
type timeDest struct{ t *time.Time }

// ScanInt64 implements pgtype.Int64Scanner.
func (d timeDest) ScanInt64(v pgtype.Int8) error {
	if !v.Valid {
		*d.t = time.Time{}
		return nil
	}
	*d.t = time.Unix(0, v.Int64).UTC()
	return nil
}
