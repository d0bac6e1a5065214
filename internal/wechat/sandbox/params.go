package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// fieldChecker validates request fields in order and keeps the first failure, which is
// what WeChat Pay reports. Lengths are counted in UTF-8 bytes (the stricter reading of
// string[1,N]); every string must be valid UTF-8 without 4-byte characters.
type fieldChecker struct {
	location string // locBody, locQuery or locPath
	err      *apiError
}

// name is how the error detail spells a field: a JSON pointer in the body.
func (c *fieldChecker) name(field string) string {
	if c.location == locBody {
		return "/" + field
	}
	return field
}

func (c *fieldChecker) fail(field string, value any, issue string) {
	if c.err == nil {
		c.err = paramError(c.name(field), c.location, value, issue)
	}
}

// str checks a string of 1 to max bytes; it reports whether the value is present and valid.
func (c *fieldChecker) str(field, v string, max int, required bool) bool {
	if c.err != nil {
		return false
	}
	switch {
	case v == "":
		if required {
			c.fail(field, nil, "is required")
		}
		return false
	case len(v) > max:
		c.fail(field, v, fmt.Sprintf("must be 1 to %d bytes long", max))
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r > 0xFFFF }):
		c.fail(field, v, "must contain only 1 to 3 byte UTF-8 characters (no emoji)")
	}
	return c.err == nil
}

// notifyURL checks a notification URL: absolute http(s), no query string, no fragment.
// WeChat Pay requires https; the sandbox also accepts http so local receivers work.
func (c *fieldChecker) notifyURL(field, v string, required bool) {
	if !c.str(field, v, 256, required) {
		return
	}
	u, err := url.Parse(v)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		c.fail(field, v, "must be an absolute https URL")
	case u.RawQuery != "" || u.Fragment != "":
		c.fail(field, v, "must not carry query parameters or a fragment")
	}
}

// absURL checks an optional absolute http(s) URL such as return_url.
func (c *fieldChecker) absURL(field, v string) {
	if !c.str(field, v, 256, false) {
		return
	}
	if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		c.fail(field, v, "must be an absolute URL")
	}
}

// ip checks an IPv4 or IPv6 address of at most 32 bytes.
func (c *fieldChecker) ip(field, v string, required bool) {
	if c.str(field, v, 32, required) && net.ParseIP(v) == nil {
		c.fail(field, v, "must be an IP address")
	}
}

// time checks an optional RFC 3339 time that must lie after now.
func (c *fieldChecker) time(field, v string, now time.Time) time.Time {
	if !c.str(field, v, 64, false) {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	switch {
	case err != nil:
		c.fail(field, v, "must be an RFC 3339 time such as 2018-06-08T10:34:56+08:00")
	case !t.After(now):
		c.fail(field, v, "must be in the future")
	}
	return t
}

// planID checks a required positive integer given in the JSON body.
func (c *fieldChecker) planID(v *int64) int64 {
	switch {
	case c.err != nil:
	case v == nil:
		c.fail("plan_id", nil, "is required")
	case *v <= 0:
		c.fail("plan_id", *v, "must be a positive integer")
	default:
		return *v
	}
	return 0
}

// planIDString checks a required positive integer given as a query parameter.
func (c *fieldChecker) planIDString(v string) int64 {
	if !c.str("plan_id", v, 20, true) {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		c.fail("plan_id", v, "must be a positive integer")
		return 0
	}
	return n
}

// nonNegative checks an optional non-negative integer query parameter; "" is def.
func (c *fieldChecker) nonNegative(field, v string, def int) int {
	if !c.str(field, v, 10, false) {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		c.fail(field, v, "must be a non-negative integer")
		return def
	}
	return n
}

// decodeBody unmarshals a JSON object; unknown fields are ignored.
func decodeBody(body []byte, v any) *apiError {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return paramError("", locBody, nil, "the request body must be a JSON object")
	}
	err := json.Unmarshal(trimmed, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return paramError("/"+strings.ReplaceAll(typeErr.Field, ".", "/"), locBody, nil,
			"must be a JSON "+jsonKind(typeErr.Type))
	case err != nil:
		return paramError("", locBody, nil, "the request body is not valid JSON")
	}
	return nil
}

// jsonKind names the JSON type a Go field expects.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	default:
		return "value of the documented type"
	}
}
