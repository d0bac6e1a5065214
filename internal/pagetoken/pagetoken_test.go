package pagetoken

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/papayd/papayd/internal/service"
)

func TestRoundTripAndRefusals(t *testing.T) {
	t.Parallel()
	f := Charges(service.ChargeFilter{State: service.ChargeSucceeded, CreatedFrom: time.Unix(10, 5)})
	c := Cursor{CreateTime: 1_700_000_000_123456789, ID: 42}
	tok := Encode(f, c)
	if got, err := Decode(tok, f); err != nil || got != c {
		t.Fatalf("Decode(Encode(c)) = %v, %v; want %v", got, err, c)
	}
	if got, err := Decode("", f); err != nil || got != FirstPage {
		t.Fatalf(`Decode("") = %v, %v; want the first page`, got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	otherVersion := append([]byte{version + 1}, raw[1:]...)
	for name, bad := range map[string]string{
		"another filter":  Encode(Charges(service.ChargeFilter{State: service.ChargeFailed}), c),
		"another list":    Encode(Refunds(service.RefundFilter{}), c),
		"another version": base64.RawURLEncoding.EncodeToString(otherVersion),
		"padded":          tok + "=",
		"truncated":       tok[:len(tok)-2],
		"not base64":      "!!",
		"another instant": Encode(Charges(service.ChargeFilter{State: service.ChargeSucceeded, CreatedFrom: time.Unix(10, 6)}), c),
	} {
		if _, err := Decode(bad, f); !errors.Is(err, service.ErrInvalidPageToken) {
			t.Errorf("%s: err = %v, want ErrInvalidPageToken", name, err)
		}
	}
	// The instant counts, not its zone.
	shanghai := time.FixedZone("CST", 8*3600)
	if Charges(service.ChargeFilter{CreatedTo: time.Unix(10, 5)}) != Charges(service.ChargeFilter{CreatedTo: time.Unix(10, 5).In(shanghai)}) {
		t.Error("one instant in two zones hashes differently")
	}
	// Values are length-prefixed: moving a boundary changes the key.
	if Key(nil).Str("ab").Str("c").Hash() == Key(nil).Str("a").Str("bc").Hash() {
		t.Error(`"ab","c" and "a","bc" hash alike`)
	}
}
