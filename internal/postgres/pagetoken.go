package postgres

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/papayd/papayd/internal/service"
)

// The page tokens are internal/db's (pagetoken.go), byte for byte: the
// same cursor, encoding, version and filter hash, so a token means the same
// in both stores, and the filter encoding below must stay in step with
// that file's.

// cursor is the position of the last row of a page in the order
// (create_time DESC, id DESC); the next page starts after it.
type cursor struct {
	createTime int64 // unix nanoseconds
	id         int64
}

// firstPage is before every row.
var firstPage = cursor{createTime: math.MaxInt64, id: math.MaxInt64}

// A page token is base64url (unpadded) of: version byte, the cursor (two
// big-endian int64), and a hash of the filter the token was issued for.
const (
	pageTokenVersion = 1
	pageTokenLen     = 1 + 8 + 8 + 8
)

// encodePageToken returns the token of the page after c under the filter
// whose filterKey hash is filter.
func encodePageToken(filter uint64, c cursor) string {
	b := make([]byte, 0, pageTokenLen)
	b = append(b, pageTokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.createTime))
	b = binary.BigEndian.AppendUint64(b, uint64(c.id))
	b = binary.BigEndian.AppendUint64(b, filter)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the cursor token names: firstPage for "",
// service.ErrInvalidPageToken for a token not issued for the filter whose
// hash is filter.
func decodePageToken(token string, filter uint64) (cursor, error) {
	if token == "" {
		return firstPage, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != pageTokenLen || b[0] != pageTokenVersion ||
		binary.BigEndian.Uint64(b[17:]) != filter {
		return cursor{}, fmt.Errorf("page token: %w", service.ErrInvalidPageToken)
	}
	return cursor{
		createTime: int64(binary.BigEndian.Uint64(b[1:])),
		id:         int64(binary.BigEndian.Uint64(b[9:])),
	}, nil
}

// filterKey is the encoding of what a filter selects (not its page size or
// token). Its hash goes into page tokens, so a token cannot be replayed
// under another filter. Every value is length- or flag-prefixed, so two
// filters never encode alike.
type filterKey []byte

func (k filterKey) str(s string) filterKey {
	k = binary.AppendUvarint(k, uint64(len(s)))
	return append(k, s...)
}

// strs encodes a set of sub-merchants; an empty set adds nothing.
func (k filterKey) strs(ss []string) filterKey {
	if len(ss) == 0 {
		return k
	}
	k = binary.AppendUvarint(k, uint64(len(ss)))
	for _, s := range ss {
		k = k.str(s)
	}
	return k
}

func (k filterKey) int(v int64) filterKey { return binary.AppendVarint(k, v) }

// time encodes the instant of t (not its zone); the zero time differs from
// every other.
func (k filterKey) time(t time.Time) filterKey {
	if t.IsZero() {
		return append(k, 0)
	}
	return append(k, 1).int(t.Unix()).int(int64(t.Nanosecond()))
}

func (k filterKey) hash() uint64 {
	h := fnv.New64a()
	h.Write(k)
	return h.Sum64()
}

// agreementFilterHash identifies what f selects. f.SubMchIDs must be in
// the form subMchIDScope returns (sorted, distinct).
func agreementFilterHash(f service.AgreementFilter) uint64 {
	return filterKey(nil).str(f.OpenID).str(string(f.State)).str(f.SubMchID).int(f.PlanID).strs(f.SubMchIDs).hash()
}

// chargeFilterHash identifies what f selects. It starts with the table
// name, so a token of ListAgreements is not one of ListCharges.
func chargeFilterHash(f service.ChargeFilter) uint64 {
	return filterKey(nil).str("charges").
		str(f.ContractID).str(f.OutContractCode).str(f.OpenID).str(string(f.State)).str(f.SubMchID).
		time(f.CreatedFrom).time(f.CreatedTo).strs(f.SubMchIDs).hash()
}

// refundFilterHash identifies what f selects. It starts with the table
// name, so a token of ListAgreements or ListCharges is not one of
// ListRefunds. f.SubMchIDs must be in the form subMchIDScope returns.
func refundFilterHash(f service.RefundFilter) uint64 {
	return filterKey(nil).str("refunds").
		str(f.OutTradeNo).str(string(f.State)).str(f.SubMchID).strs(f.SubMchIDs).hash()
}

// queryPage runs a page query, whose parameter @limit is the row limit
// (pageSize+1: the extra row tells whether a next page exists), and
// returns the page and the token of the next ("" on the last). scan reads
// one row and its cursor; filter is the hash the token is bound to.
func queryPage[T any](ctx context.Context, q querier, query string, args pgx.NamedArgs, pageSize int, filter uint64,
	scan func(pgx.Row) (T, cursor, error)) ([]T, string, error) {
	if pageSize < 1 {
		return nil, "", fmt.Errorf("page size %d is not positive", pageSize)
	}
	args["limit"] = pageSize + 1
	rows, err := q.Query(ctx, query, args)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var (
		page []T
		last cursor
	)
	for rows.Next() {
		v, c, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		if len(page) == pageSize {
			return page, encodePageToken(filter, last), nil // the extra row: there is a next page
		}
		page, last = append(page, v), c
	}
	return page, "", rows.Err()
}
