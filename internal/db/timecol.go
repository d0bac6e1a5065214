package db

import (
	"database/sql/driver"
	"fmt"
	"math"
	"time"
)

// The instants an int64 of nanoseconds can hold (years 1677 to 2262).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timeArg binds a time.Time to a time column: unix nanoseconds UTC, NULL
// for the zero time.
type timeArg time.Time

// Value implements driver.Valuer.
func (t timeArg) Value() (driver.Value, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return nil, nil
	}
	if tt.Before(minTime) || tt.After(maxTime) {
		return nil, fmt.Errorf("time %s is outside the storable range", tt.UTC().Format(time.RFC3339))
	}
	return tt.UnixNano(), nil
}

// timeDest scans a time column into *t: NULL is the zero time, anything
// else comes back in UTC.
type timeDest struct{ t *time.Time }

// Scan implements sql.Scanner.
func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want INTEGER", src)
	}
	return nil
}
