package policy

import "testing"

func TestFieldNamesRoundTrip(t *testing.T) {
	for _, f := range []Field{0, FieldUser, FieldsAll, FieldMounts | FieldDevices | FieldSeccomp} {
		got, err := ParseFieldNames(joinNames(FieldNames(f)))
		if err != nil || got != f {
			t.Errorf("round trip of %b: %b, %v", f, got, err)
		}
	}
	if len(FieldNames(FieldsAll)) != len(fieldNames) {
		t.Error("a Field has no name")
	}
	if _, err := ParseFieldNames("user,capabilties"); err == nil {
		t.Error("unknown field name accepted")
	}
}

func joinNames(ns []string) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ","
		}
		s += n
	}
	return s
}
