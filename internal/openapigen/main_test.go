package main

import (
	"strings"
	"testing"
)

// TestApply: RFC 7386 merge patch semantics, key order kept (new keys
// follow in the patch's order), numbers kept as written, and applying the
// patch twice changes nothing more.
func TestApply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, patch, want string }{
		{"replace", `{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{"add after", `{"b":1,"a":"b"}`, `{"c":"d","0":1}`, `{"b":1,"a":"b","c":"d","0":1}`},
		{"remove", `{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{"arrays replace", `{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{"deep", `{"a":{"b":"c","d":2}}`, `{"a":{"b":"d","e":null,"d":null}}`, `{"a":{"b":"d"}}`},
		{"object over scalar", `{"a":"x"}`, `{"a":{"b":null,"c":1}}`, `{"a":{"c":1}}`},
		{"numbers as written", `{"a":1.50,"b":12345678901234567890}`, `{}`, `{"a":1.50,"b":12345678901234567890}`},
		{"escaping as the generator's", `{"a":"\u003e0\u0026"}`, `{}`, `{"a":"\u003e0\u0026"}`},
	} {
		got, err := apply([]byte(tc.doc), []byte(tc.patch))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if compact(got) != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, compact(got), tc.want)
		}
		again, err := apply(got, []byte(tc.patch))
		if err != nil || string(again) != string(got) {
			t.Errorf("%s: applying twice: %s, %v", tc.name, again, err)
		}
	}
	for _, bad := range []struct{ doc, patch string }{{`{"a":1,"a":2}`, `{}`}, {`{}`, `[]`}, {`{} {}`, `{}`}, {`{`, `{}`}} {
		if _, err := apply([]byte(bad.doc), []byte(bad.patch)); err == nil {
			t.Errorf("apply(%s, %s): no error", bad.doc, bad.patch)
		}
	}
}

func compact(b []byte) string {
	return strings.NewReplacer("\n", "", " ", "").Replace(string(b))
}
