package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

const (
	alphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	decimal      = "0123456789"
)

// chinaTime is the +08:00 zone WeChat Pay uses in every RFC 3339 time it returns.
var chinaTime = time.FixedZone("CST", 8*60*60)

// wechatTime formats t like WeChat Pay does: RFC 3339, seconds, +08:00.
func wechatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(chinaTime).Format(time.RFC3339)
}

// randomString returns n characters drawn uniformly from alphabet (at most 256 characters)
// using crypto/rand.
func randomString(n int, alphabet string) string {
	limit := 256 - 256%len(alphabet) // reject bytes above the last full cycle: no modulo bias
	var b strings.Builder
	b.Grow(n)
	buf := make([]byte, n+n/2+8)
	for b.Len() < n {
		rand.Read(buf) // never fails since Go 1.24
		for _, c := range buf {
			if int(c) < limit && b.Len() < n {
				b.WriteByte(alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return b.String()
}

// newNonce returns a signing nonce: 32 letters and digits, as the SDK generates.
func newNonce() string { return randomString(32, alphanumeric) }

// newResourceNonce returns the 12-character AEAD nonce of an encrypted resource.
func newResourceNonce() string { return randomString(12, alphanumeric) }

// newRequestID returns a Request-ID header value.
func newRequestID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// newOpenID returns a WeChat-looking openid (28 characters starting with "o").
func newOpenID() string { return "o" + randomString(27, alphanumeric+"_-") }

// newSessionID returns an 18-digit session id like "201710180325670965".
func newSessionID(now time.Time) string {
	return now.In(chinaTime).Format("20060102") + randomString(10, decimal)
}

// newContractID returns a contract id like "Wx15463511252015071056489715" (28 characters).
func newContractID(now time.Time) string {
	return "Wx" + now.In(chinaTime).Format("20060102150405") + randomString(12, decimal)
}

// newNotificationID returns a notification id like "EV-2018022511223320873" (25 characters).
func newNotificationID(now time.Time) string {
	return "EV-" + now.In(chinaTime).Format("20060102150405") + randomString(8, decimal)
}

// newTransactionID returns a WeChat order number of 28 digits like
// "4200001136202112092809736426": "42000" + 5 digits + the date + 10 digits.
func newTransactionID(now time.Time) string {
	return "42000" + randomString(5, decimal) + now.In(chinaTime).Format("20060102") + randomString(10, decimal)
}

// newRefundID returns a WeChat refund id of 29 digits like
// "50300000382019052709732678859": "503" + 5 digits + the date + 13 digits.
func newRefundID(now time.Time) string {
	return "503" + randomString(5, decimal) + now.In(chinaTime).Format("20060102") + randomString(13, decimal)
}

// derivedOpenID returns the stable openid of the user openID under another app
// (sub_openid): WeChat openids are per app.
func derivedOpenID(appID, openID string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + openID))
	return "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27]
}
