// Package pagetoken is the page token of papayd's lists, shared by both
// stores (internal/db, internal/postgres), so that a token means the same
// whichever store issued it: the position after a page's last row in the
// order (create_time DESC, id DESC), and a hash of the filter it was issued
// for, so that a token cannot be replayed under another filter.
package pagetoken

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/papayd/papayd/internal/service"
)

// Cursor is the position of the last row of a page in the order
// (create_time DESC, id DESC); the next page starts after it.
type Cursor struct {
	CreateTime int64 // unix nanoseconds
	ID         int64
}

// FirstPage is before every row.
var FirstPage = Cursor{CreateTime: math.MaxInt64, ID: math.MaxInt64}

// A page token is base64url (unpadded) of: version byte, the cursor (two
// big-endian int64), and a hash of the filter the token was issued for.
const (
	version = 1
	length  = 1 + 8 + 8 + 8
)

// Encode returns the token of the page after c under the filter whose Key
// hash is filter.
func Encode(filter uint64, c Cursor) string {
	b := make([]byte, 0, length)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(c.CreateTime))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ID))
	b = binary.BigEndian.AppendUint64(b, filter)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the cursor token names: FirstPage for "",
// service.ErrInvalidPageToken for a token not issued for the filter whose
// hash is filter.
func Decode(token string, filter uint64) (Cursor, error) {
	if token == "" {
		return FirstPage, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != length || b[0] != version ||
		binary.BigEndian.Uint64(b[17:]) != filter {
		return Cursor{}, fmt.Errorf("page token: %w", service.ErrInvalidPageToken)
	}
	return Cursor{
		CreateTime: int64(binary.BigEndian.Uint64(b[1:])),
		ID:         int64(binary.BigEndian.Uint64(b[9:])),
	}, nil
}

// Key is the encoding of what a filter selects (not its page size or
// token). Every value is length- or flag-prefixed, so two filters never
// encode alike.
type Key []byte

// Str adds s.
func (k Key) Str(s string) Key {
	k = binary.AppendUvarint(k, uint64(len(s)))
	return append(k, s...)
}

// Strs adds a set of sub-merchants; an empty set adds nothing, so a filter
// without one encodes as before the set existed.
func (k Key) Strs(ss []string) Key {
	if len(ss) == 0 {
		return k
	}
	k = binary.AppendUvarint(k, uint64(len(ss)))
	for _, s := range ss {
		k = k.Str(s)
	}
	return k
}

// Int adds v.
func (k Key) Int(v int64) Key { return binary.AppendVarint(k, v) }

// Time adds the instant of t (not its zone); the zero time differs from
// every other.
func (k Key) Time(t time.Time) Key {
	if t.IsZero() {
		return append(k, 0)
	}
	return append(k, 1).Int(t.Unix()).Int(int64(t.Nanosecond()))
}

// Hash is what a token carries of the key.
func (k Key) Hash() uint64 {
	h := fnv.New64a()
	h.Write(k)
	return h.Sum64()
}

// Agreements identifies what f selects. f.SubMchIDs must be in the form
// the stores' sub-merchant scope gives (sorted, distinct).
func Agreements(f service.AgreementFilter) uint64 {
	return Key(nil).Str(f.OpenID).Str(string(f.State)).Str(f.SubMchID).Int(f.PlanID).Strs(f.SubMchIDs).Hash()
}

// Charges identifies what f selects. It starts with the table name, so a
// token of ListAgreements is not one of ListCharges.
func Charges(f service.ChargeFilter) uint64 {
	return Key(nil).Str("charges").
		Str(f.ContractID).Str(f.OutContractCode).Str(f.OpenID).Str(string(f.State)).Str(f.SubMchID).
		Time(f.CreatedFrom).Time(f.CreatedTo).Strs(f.SubMchIDs).Hash()
}

// Refunds identifies what f selects. It starts with the table name, so a
// token of ListAgreements or ListCharges is not one of ListRefunds.
func Refunds(f service.RefundFilter) uint64 {
	return Key(nil).Str("refunds").
		Str(f.OutTradeNo).Str(string(f.State)).Str(f.SubMchID).Strs(f.SubMchIDs).Hash()
}

// Audit identifies what f selects.
func Audit(f service.AuditFilter) uint64 {
	return Key(nil).Str("audit").Str(f.Resource).Str(f.KeyID).Hash()
}
