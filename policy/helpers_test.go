package policy

import (
	"slices"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 27, 12, 5, 0, 0, time.UTC)

// freshKernel is kernel state that no kernel rule of a policy without kernel
// requirements objects to.
func freshKernel() *KernelState {
	f := false
	return &KernelState{Release: "6.1.0-18-amd64", Distro: "dpkg", UpdatesPending: &f, ObservedAt: testNow.Add(-time.Minute)}
}

// everyRuleEnforced is a policy with every container rule at enforce.
func everyRuleEnforced(t testing.TB) *Policy {
	t.Helper()
	p, err := LoadBytes("enforce.yaml", []byte(header+"metadata: {name: enforce}\nspec: {defaultAction: enforce}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome evaluates w under p and reports what rule id did.
func outcome(t testing.TB, p *Policy, w *Workload, id string) (v Violation, violated, deferred bool) {
	t.Helper()
	d := Evaluate(p, w, freshKernel(), testNow)
	for _, x := range d.Violations {
		if x.Rule == id {
			return x, true, false
		}
	}
	return Violation{}, false, slices.Contains(d.Deferred, id)
}

// ruleFixtureCase is one fixture and what rule id must make of it.
type ruleFixtureCase struct {
	fixture string
	// detail is the wanted violation detail; "" means the rule must pass.
	detail string
}

// testRuleOnFixtures checks a rule against containerd-generated fixtures.
func testRuleOnFixtures(t *testing.T, id string, cases []ruleFixtureCase) {
	t.Helper()
	p := everyRuleEnforced(t)
	for _, c := range cases {
		w := fixtureWorkload(t, c.fixture)
		v, violated, deferred := outcome(t, p, w, id)
		switch {
		case deferred:
			t.Errorf("%s: %s deferred", c.fixture, id)
		case c.detail == "" && violated:
			t.Errorf("%s: %s violated: %s", c.fixture, id, v.Detail)
		case c.detail != "" && !violated:
			t.Errorf("%s: %s passed, want %q", c.fixture, id, c.detail)
		case c.detail != "" && v.Detail != c.detail:
			t.Errorf("%s: %s detail\n got  %s\n want %s", c.fixture, id, v.Detail, c.detail)
		}
		if violated && (v.Action != ActionEnforce || v.Reason == "") {
			t.Errorf("%s: violation %+v", c.fixture, v)
		}
	}
}

// testRuleDeferred checks that the rule is deferred, never passed, when its
// input was not seen.
func testRuleDeferred(t *testing.T, id string, needs Field) {
	t.Helper()
	p := everyRuleEnforced(t)
	w := fixtureWorkload(t, "baseline")
	w.Seen &^= needs
	if _, violated, deferred := outcome(t, p, w, id); violated || !deferred {
		t.Errorf("%s with its input unseen: violated=%v deferred=%v, want deferred", id, violated, deferred)
	}
}

// tweak evaluates a modified baseline workload.
func tweak(t *testing.T, p *Policy, id string, f func(w *Workload)) (Violation, bool) {
	t.Helper()
	w := fixtureWorkload(t, "baseline")
	f(w)
	v, violated, deferred := outcome(t, p, w, id)
	if deferred {
		t.Fatalf("%s deferred", id)
	}
	return v, violated
}
