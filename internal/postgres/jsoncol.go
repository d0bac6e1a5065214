package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"
)

// jsonArg binds a list of strings, v, to a JSON array column (TEXT, see
// the package doc); nil is [], as internal/db writes it. A struct, not a
// slice type: pgx binds a nil slice as NULL without asking its TextValue.
type jsonArg[T ~string] struct{ v []T }

// TextValue implements pgtype.TextValuer.
func (a jsonArg[T]) TextValue() (pgtype.Text, error) {
	if a.v == nil {
		return pgtype.Text{String: "[]", Valid: true}, nil
	}
	b, err := json.Marshal(a.v)
	if err != nil {
		return pgtype.Text{}, err
	}
	return pgtype.Text{String: string(b), Valid: true}, nil
}

// jsonDest scans a JSON array column into *p; [] is nil, as internal/db
// reads it.
type jsonDest[T ~string] struct{ p *[]T }

// ScanText implements pgtype.TextScanner.
func (d jsonDest[T]) ScanText(v pgtype.Text) error {
	if !v.Valid {
		return fmt.Errorf("JSON column is NULL")
	}
	var out []T
	if err := json.Unmarshal([]byte(v.String), &out); err != nil {
		return err
	}
	if len(out) == 0 {
		out = nil
	}
	*d.p = out
	return nil
}
