package service

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// violations collects field violations in request order.
type violations []FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return invalid(v)
}

// code checks an identifier: 1..max characters of letters, digits, '_' and
// '-'. Empty is allowed unless required.
func (v *violations) code(field, val string, max int, required bool) {
	v.codeOf(field, val, max, required, "_-", "'_', '-'")
}

// refundCode checks a merchant refund number: 1..max characters of
// letters, digits and '_', '-', '|', '*', '@'. Empty is allowed unless
// required.
func (v *violations) refundCode(field, val string, max int, required bool) {
	v.codeOf(field, val, max, required, "_-|*@", "'_', '-', '|', '*', '@'")
}

// codeOf checks 1..max characters of letters, digits and the punctuation
// extra (named so in the violation). Empty is allowed unless required.
func (v *violations) codeOf(field, val string, max int, required bool, extra, named string) {
	if val == "" {
		if required {
			v.add(field, "is required")
		}
		return
	}
	if len(val) > max {
		v.add(field, "must be at most %d characters", max)
		return
	}
	for _, r := range val {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(extra, r)) {
			v.add(field, "may contain only letters, digits and %s", named)
			return
		}
	}
}

// token checks an opaque WeChat identifier (openid, appid, mchid): 1..max
// printable ASCII characters without spaces.
func (v *violations) token(field, val string, max int, required bool) {
	if val == "" {
		if required {
			v.add(field, "is required")
		}
		return
	}
	if len(val) > max {
		v.add(field, "must be at most %d characters", max)
		return
	}
	for i := 0; i < len(val); i++ {
		if val[i] <= ' ' || val[i] > '~' {
			v.add(field, "may contain only printable ASCII characters without spaces")
			return
		}
	}
}

// text checks free text: valid UTF-8 of 1..max bytes, without 4-byte
// UTF-8 (WeChat refuses emoji) or control characters.
func (v *violations) text(field, val string, max int, required bool) {
	if val == "" {
		if required {
			v.add(field, "is required")
		}
		return
	}
	if !utf8.ValidString(val) {
		v.add(field, "must be valid UTF-8")
		return
	}
	if len(val) > max {
		// WeChat counts UTF-8 bytes: a CJK character takes 3 of them.
		v.add(field, "must be at most %d bytes of UTF-8", max)
		return
	}
	for _, r := range val {
		if r > 0xFFFF {
			v.add(field, "must not contain 4-byte UTF-8 characters such as emoji")
			return
		}
		if r < ' ' || r == 0x7f {
			v.add(field, "must not contain control characters")
			return
		}
	}
}

// link checks an absolute http(s) URL of at most max characters.
func (v *violations) link(field, val string, max int) {
	if val == "" {
		return
	}
	if len(val) > max {
		v.add(field, "must be at most %d characters", max)
		return
	}
	u, err := url.Parse(val)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add(field, "must be an absolute http(s) URL")
	}
}

// ip checks an IPv4 or IPv6 address.
func (v *violations) ip(field, val string, required bool) {
	if val == "" {
		if required {
			v.add(field, "is required")
		}
		return
	}
	if _, err := netip.ParseAddr(val); err != nil || len(val) > 32 {
		v.add(field, "must be an IP address")
	}
}
