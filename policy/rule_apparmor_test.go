package policy

import "testing"

func TestAppArmor(t *testing.T) {
	testRuleOnFixtures(t, RuleAppArmor, []ruleFixtureCase{
		{"baseline", ""},
		{"apparmor-fail", `container "app" must not run AppArmor unconfined (process.apparmorProfile="unconfined")`},
		{"privileged-fail", `container "app" must set an AppArmor profile (process.apparmorProfile is empty)`},
	})
	testRuleDeferred(t, RuleAppArmor, FieldAppArmor)
}

// TestAppArmorUnconfinedSpellings: every name the kernel resolves to an
// unconfined profile is unconfined; real profile names are not.
func TestAppArmorUnconfinedSpellings(t *testing.T) {
	for name, want := range map[string]bool{
		"unconfined": true, " unconfined\n": true, "&unconfined": true, ":root:unconfined": true,
		":root://unconfined": true, ":root:": true, ":root": true, ":ns:  ": true,
		"cri-containerd.apparmor.d": false, "containers-default-0.50.1": false, "localhost/unconfined": false,
		"unconfined-ish": false, "Unconfined": false, ":root:docker-default": false, "docker-default//&unconfined": false,
	} {
		if got := appArmorUnconfined(name); got != want {
			t.Errorf("appArmorUnconfined(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestAppArmorShippedPolicies: baseline.yaml and restricted.yaml refuse an
// explicit unconfined profile and admit an unset one, as Pod Security
// baseline does (check_appArmorProfile.go allows RuntimeDefault, Localhost
// and unset); the built-in default still reports an unset profile.
func TestAppArmorShippedPolicies(t *testing.T) {
	for _, file := range []string{"baseline", "restricted"} {
		p, err := Load("../examples/policies/"+file+".yaml", "")
		if err != nil {
			t.Fatal(err)
		}
		unconf := fixtureWorkload(t, "apparmor-fail")
		if v, bad, _ := outcome(t, p, unconf, RuleAppArmor); !bad || v.Action != ActionEnforce {
			t.Errorf("%s: unconfined: violated=%v action=%s, want enforce", file, bad, v.Action)
		}
		if d := Evaluate(p, unconf, freshKernel(), testNow); d.Verdict != Deny {
			t.Errorf("%s: unconfined admitted: %+v", file, d)
		}
		for _, profile := range []string{"", "cri-containerd.apparmor.d", "localhost-profile"} {
			w := fixtureWorkload(t, "baseline")
			w.AppArmorProfile = profile
			if v, bad, _ := outcome(t, p, w, RuleAppArmor); bad {
				t.Errorf("%s: profile %q refused: %s", file, profile, v.Detail)
			}
		}
	}
	w := fixtureWorkload(t, "baseline")
	w.AppArmorProfile = ""
	if v, bad, _ := outcome(t, Default(), w, RuleAppArmor); !bad || v.Action != ActionAudit {
		t.Errorf("default policy, unset profile: violated=%v action=%s, want audit", bad, v.Action)
	}
}
