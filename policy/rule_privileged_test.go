package policy

import "testing"

func TestPrivileged(t *testing.T) {
	testRuleOnFixtures(t, RulePrivileged, []ruleFixtureCase{
		{"baseline", ""},
		{"capabilities-fail", ""},
		{"procMount-fail", ""},
		{"privileged-fail", `container "app" must not be privileged (all capabilities in process.capabilities.bounding, empty linux.maskedPaths, writable sysfs at /sys)`},
	})
	testRuleDeferred(t, RulePrivileged, FieldPrivileged)
	testRuleDeferred(t, RulePrivileged, FieldCapabilities)
	p := everyRuleEnforced(t)
	// Each of the three parts alone is not "privileged".
	priv := fixtureWorkload(t, "privileged-fail")
	for name, f := range map[string]func(w *Workload){
		"masked paths kept": func(w *Workload) { w.MaskedPaths = []string{"/proc/kcore"} },
		"sysfs read-only": func(w *Workload) {
			for i := range w.Mounts {
				if w.Mounts[i].Destination == "/sys" {
					w.Mounts[i].Options = []string{"nosuid", "ro"}
				}
			}
		},
		"three capabilities short": func(w *Workload) { w.Capabilities.Bounding = w.Capabilities.Bounding[3:] },
		"no CAP_SYS_ADMIN": func(w *Workload) {
			var b []string
			for _, c := range w.Capabilities.Bounding {
				if c != "CAP_SYS_ADMIN" {
					b = append(b, c)
				}
			}
			w.Capabilities.Bounding = b
		},
	} {
		w := *priv
		w.Mounts = append([]Mount(nil), priv.Mounts...)
		f(&w)
		if _, bad, _ := outcome(t, p, &w, RulePrivileged); bad {
			t.Errorf("%s: judged privileged", name)
		}
	}
}
