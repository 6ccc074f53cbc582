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

func TestAfterNRI(t *testing.T) {
	d := Decision{Verdict: Warn, Violations: []Violation{
		{Rule: RuleKernelPatches, Action: ActionWarn},
		{Rule: "capabilities", Action: ActionEnforce},
	}, Exemptions: []string{"x"}}
	if !AfterNRI(&d) || d.Verdict != Deny || len(d.Violations) != 1 || d.Violations[0].Rule != "capabilities" {
		t.Errorf("AfterNRI kept %+v", d)
	}
	d = Decision{Verdict: Warn, Violations: []Violation{{Rule: RuleKernelStateUnknown, Action: ActionWarn}}, Exemptions: []string{"x"}}
	if AfterNRI(&d) || d.Verdict != Allow {
		t.Errorf("kernel-only/exemption-only decision still recorded: %+v", d)
	}
}
