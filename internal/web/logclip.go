package web

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// maxLoggedBytes bounds each logged value that comes from outside
// (headers, ids, field values, error texts quoting them).
const maxLoggedBytes = 64

// clip returns s cut to maxLoggedBytes (on a UTF-8 boundary), the cut
// marked with how many bytes were dropped: "abc…(+1234 bytes)".
func clip(s string) string { return clipTo(s, maxLoggedBytes) }

// clipError is clip for an error text, which may quote request values:
// it gets four times the room of one value.
func clipError(s string) string { return clipTo(s, 4*maxLoggedBytes) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(+" + strconv.Itoa(len(s)-n) + " bytes)"
}

// rejectionLogInterval is how often a rejected callback is logged, per
// outcome: one sample, and the count of those not logged since.
const rejectionLogInterval = 10 * time.Second
