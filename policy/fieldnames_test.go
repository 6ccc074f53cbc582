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

func TestUnjudgedAndMarkUnjudged(t *testing.T) {
	d := Decision{Verdict: Allow, Deferred: []string{RuleHostNamespaces, RuleRunAsRoot}}
	if got := Unjudged(&d, FieldUser); len(got) != 1 || got[0] != RuleHostNamespaces {
		t.Fatalf("Unjudged = %v", got)
	}
	if got := Unjudged(&d, FieldUser|FieldHostNamespaces); len(got) != 0 {
		t.Fatalf("all judged by NRI: %v", got)
	}
	if ids := MarkUnjudged(&d, 0, ""); len(ids) != 2 || d.Verdict != Deny || len(d.Violations) != 1 ||
		d.Violations[0].Rule != RuleUnjudged || d.Violations[0].Action != ActionEnforce ||
		d.Violations[0].Detail != "cannot judge rules hostNamespaces, runAsRoot: input not visible to the hook or NRI; spec.hook.onError is deny" {
		t.Fatalf("deny: %v %+v", ids, d)
	}
	MarkUnjudged(&d, 0, "")
	if len(d.Violations) != 1 {
		t.Fatalf("marked twice: %+v", d.Violations)
	}
	w := Decision{Verdict: Allow, Deferred: []string{RuleSysctls}}
	MarkUnjudged(&w, 0, OnErrorAllow)
	if w.Verdict != Warn || w.Violations[0].Action != ActionWarn {
		t.Fatalf("allow: %+v", w)
	}
	n := Decision{Verdict: Allow}
	if MarkUnjudged(&n, 0, "") != nil || n.Verdict != Allow || len(n.Violations) != 0 {
		t.Fatalf("nothing deferred: %+v", n)
	}
}

// A rule NRI judged only in part is judged again in full by the last judge;
// fields only fully judged rules read are not.
func TestLeftToJudge(t *testing.T) {
	// privileged reads capabilities and the privileged field: a judge
	// that saw the capabilities only judged it in part.
	left := LeftToJudge(FieldsAll, FieldCapabilities|FieldUser)
	if !left.Has(FieldCapabilities|FieldPrivileged) || left.Has(FieldUser) {
		t.Errorf("LeftToJudge(all, capabilities|user) = %v", FieldNames(left))
	}
	d := Evaluate(Default(), &Workload{Seen: left}, kernelFixture(t, "patched"), testNow)
	for _, id := range Unjudged(&d, FieldCapabilities|FieldUser) {
		t.Errorf("rule %s left to nobody", id)
	}
	// Everything judged: nothing left; nothing judged: everything seen.
	if got := LeftToJudge(FieldsAll, FieldsAll); got != 0 {
		t.Errorf("all judged: %v", FieldNames(got))
	}
	if got := LeftToJudge(FieldsAll&^FieldSysctls, 0); got != FieldsAll&^FieldSysctls {
		t.Errorf("none judged: %v", FieldNames(got))
	}
	// A field the hook itself does not see is not added back.
	if got := LeftToJudge(FieldsAll&^FieldMounts, FieldDevices); got.Has(FieldMounts) {
		t.Errorf("unseen mounts added: %v", FieldNames(got))
	}
}
