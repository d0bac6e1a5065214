package wechat

import (
	"encoding/json"
	"testing"
)

// unquote gives what json.Unmarshal gives, error or string.
func TestUnquote(t *testing.T) {
	t.Parallel()
	for _, b := range []string{
		`"plain"`, `""`, `"支付成功"`, `"a\"b"`, `"a\\b"`, `"\u00e9\n"`, "\"tab\there\"", "\"\xff\xfe\"", "\"ok \xe4\xb8\"",
		`"unterminated`, `"`, `"a"b"`, `12`, `null`, `"\ud800"`, "\"\x7f\"", `"/slash\/"`,
	} {
		var want, got string
		werr := json.Unmarshal([]byte(b), &want)
		gerr := unquote([]byte(b), &got)
		if (werr == nil) != (gerr == nil) || got != want {
			t.Errorf("unquote(%q) = %q, %v; json.Unmarshal: %q, %v", b, got, gerr, want, werr)
		}
	}
}

func FuzzUnquote(f *testing.F) {
	f.Add([]byte(`"plain"`))
	f.Add([]byte(`"a\"b\u00e9"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got string
		werr := json.Unmarshal(b, &want)
		gerr := unquote(b, &got)
		if (werr == nil) != (gerr == nil) || got != want {
			t.Errorf("unquote(%q) = %q, %v; json.Unmarshal: %q, %v", b, got, gerr, want, werr)
		}
	})
}
