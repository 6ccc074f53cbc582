package policy

import "testing"

func TestProcMount(t *testing.T) {
	testRuleOnFixtures(t, RuleProcMount, []ruleFixtureCase{
		{"baseline", ""},
		{"procMount-fail", `container "app" must not unmask /proc (no /proc paths in linux.maskedPaths or linux.readonlyPaths)`},
	})
	testRuleDeferred(t, RuleProcMount, FieldProcMount)
	p := everyRuleEnforced(t)
	if v, bad := tweak(t, p, RuleProcMount, func(w *Workload) { w.ReadonlyPaths = nil }); !bad || v.Detail != `container "app" must not unmask /proc (no /proc paths in linux.readonlyPaths)` {
		t.Errorf("readonly paths dropped: %v %q", bad, v.Detail)
	}
	if v, bad := tweak(t, p, RuleProcMount, func(w *Workload) { w.MaskedPaths = []string{"/sys/firmware"} }); !bad || v.Detail != `container "app" must not unmask /proc (no /proc paths in linux.maskedPaths)` {
		t.Errorf("masked /proc paths dropped: %v %q", bad, v.Detail)
	}
}
