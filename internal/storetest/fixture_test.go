package storetest

import (
	"reflect"
	"testing"
	"time"
)

// TestFixturesSetEveryField keeps the round trip tests honest: a field
// added to a record (or to a charge's promotion and goods detail) that its
// fixture leaves zero would not be checked to be stored.
func TestFixturesSetEveryField(t *testing.T) {
	created := time.Now()
	checkEveryFieldSet(t, "Agreement", FullAgreement("OCC1", "C1", created))
	checkEveryFieldSet(t, "Charge", FullCharge("T1", "X1", created))
	checkEveryFieldSet(t, "Refund", FullRefund("R1", "W1", created))
}

// checkEveryFieldSet fails the test for every field of v, nested structs
// and the first element of slices included, that is zero.
func checkEveryFieldSet(t *testing.T, name string, v any) {
	t.Helper()
	var check func(path string, v reflect.Value)
	check = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				break
			}
			for i := range v.NumField() {
				check(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		case reflect.Slice:
			if v.Len() > 0 {
				check(path+"[0]", v.Index(0))
			}
		}
		if v.IsZero() {
			t.Errorf("the fixture leaves %s zero", path)
		}
	}
	check(name, reflect.ValueOf(v))
}
