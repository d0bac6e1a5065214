package wechat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// marshal encodes v as the exact bytes that are signed and sent: no HTML
// escaping (URLs keep their '&'), no trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// unquote is json.Unmarshal(b, s) for b a JSON string, without the
// decoder's second pass when b has no escape: its bytes between the quotes
// are then the string, as encoding/json would give them (it rewrites only
// escapes and invalid UTF-8). Anything else goes to json.Unmarshal.
func unquote(b []byte, s *string) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		in := b[1 : len(b)-1]
		plain := utf8.Valid(in)
		for i := 0; plain && i < len(in); i++ {
			plain = in[i] != '\\' && in[i] != '"' && in[i] >= 0x20
		}
		if plain {
			*s = string(in)
			return nil
		}
	}
	return json.Unmarshal(b, s)
}

// flexInt is an integer WeChat sends as a JSON number, or as a string of
// digits; null and "" are zero.
type flexInt int64

var errNotInteger = errors.New("not an integer")

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := unquote(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			*f = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errNotInteger
	}
	*f = flexInt(n)
	return nil
}

// looseTime is a time WeChat sends as RFC 3339, or in the older compact
// form 20060102150405 (Beijing time). Anything else, of any JSON type,
// is the zero time: a bad timestamp never makes a message unreadable.
type looseTime time.Time

var beijing = time.FixedZone("UTC+8", 8*60*60)

func (t *looseTime) UnmarshalJSON(b []byte) error {
	*t = looseTime{}
	var s string
	if unquote(b, &s) != nil {
		return nil
	}
	s = strings.TrimSpace(s)
	if v, err := time.Parse(time.RFC3339, s); err == nil {
		*t = looseTime(v)
	} else if v, err := time.ParseInLocation("20060102150405", s, beijing); err == nil {
		*t = looseTime(v)
	}
	return nil
}

// looseString is a descriptive text field (trade_state_desc, bank_type, a
// promotion's name): a JSON string as given, a number as its literal text,
// anything else the empty string. Such a field never makes an answer
// unreadable; identifiers, states, currencies and amounts are not loose.
type looseString string

func (s *looseString) UnmarshalJSON(b []byte) error {
	*s = ""
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var v string
		if unquote(b, &v) == nil {
			*s = looseString(v)
		}
	case b[0] == '-' || ('0' <= b[0] && b[0] <= '9'):
		*s = looseString(b)
	}
	return nil
}
