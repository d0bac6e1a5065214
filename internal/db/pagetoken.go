package db

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/papayd/papayd/internal/service"
)

// cursor is the position of the last agreement of a page in the order
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

// encodePageToken returns the token of the page after c under f.
func encodePageToken(f service.AgreementFilter, c cursor) string {
	b := make([]byte, 0, pageTokenLen)
	b = append(b, pageTokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.createTime))
	b = binary.BigEndian.AppendUint64(b, uint64(c.id))
	b = binary.BigEndian.AppendUint64(b, filterHash(f))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken returns the cursor f.PageToken names: firstPage for "",
// service.ErrInvalidPageToken for a token not issued for this filter.
func decodePageToken(f service.AgreementFilter) (cursor, error) {
	if f.PageToken == "" {
		return firstPage, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(f.PageToken)
	if err != nil || len(b) != pageTokenLen || b[0] != pageTokenVersion ||
		binary.BigEndian.Uint64(b[17:]) != filterHash(f) {
		return cursor{}, fmt.Errorf("page token: %w", service.ErrInvalidPageToken)
	}
	return cursor{
		createTime: int64(binary.BigEndian.Uint64(b[1:])),
		id:         int64(binary.BigEndian.Uint64(b[9:])),
	}, nil
}

// filterHash identifies what f selects (not its page size or token), so a
// token cannot be replayed under another filter.
func filterHash(f service.AgreementFilter) uint64 {
	h := fnv.New64a()
	var b []byte
	for _, s := range []string{f.OpenID, string(f.State), f.SubMchID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendVarint(b, f.PlanID)
	h.Write(b)
	return h.Sum64()
}
