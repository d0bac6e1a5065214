package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestSealedTextDecodesAsAStringWould: a ciphertext decoded as the JSON is
// read is the one decoding the JSON string, then its base64, gives; and
// is bad, or fails the JSON, where that does.
func TestSealedTextDecodesAsAStringWould(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`"aGVsbG8gd29ybGQ="`, `""`, `null`, `"aGVs\/bG8="`, `"aGVsbG8gd29ybGQ\u003d"`, `"aGVs\nbG8="`,
		`"aGVs bG8="`, `"not base64!"`, `"aGVsbG8"`, `"\u00e9"`, "\"\xff\xfe\"", `12`, `true`, `{}`, `["aGVsbG8="]`,
	} {
		var want struct {
			b        []byte
			bad, err bool
		}
		var s *string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			want.err = true
		} else if s != nil {
			b, err := base64.StdEncoding.DecodeString(*s)
			want.b, want.bad = b, err != nil
		}
		var got sealedText
		err := json.Unmarshal([]byte(raw), &got)
		if (err != nil) != want.err {
			t.Errorf("%s: error %v, want one: %v", raw, err, want.err)
			continue
		}
		if want.err {
			continue
		}
		if got.bad != want.bad || (!want.bad && !bytes.Equal(got.b, want.b)) {
			t.Errorf("%s: %q (bad %v), want %q (bad %v)", raw, got.b, got.bad, want.b, want.bad)
		}
	}
}
