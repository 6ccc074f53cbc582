package policy

import "testing"

func TestRunAsRoot(t *testing.T) {
	testRuleOnFixtures(t, RuleRunAsRoot, []ruleFixtureCase{
		{"baseline", ""},
		{"runAsRoot-pass-userns", ""},
		{"runAsRoot-fail", `container "app" must not run as uid 0 (process.user.uid)`},
		{"runAsRoot-fail-userns-identity", `container "app" must not run as uid 0 mapped to host uid 0 (process.user.uid, linux.uidMappings)`},
	})
	testRuleDeferred(t, RuleRunAsRoot, FieldUser)
	p := everyRuleEnforced(t)
	if v, bad := tweak(t, p, RuleRunAsRoot, func(w *Workload) {
		w.User = User{UID: 0, UserNamespace: true}
	}); !bad || v.Detail != `container "app" runs as uid 0 in a user namespace whose uid mappings do not map it (linux.uidMappings)` {
		t.Errorf("user namespace without mappings: %v %q", bad, v.Detail)
	}
	if _, bad := tweak(t, p, RuleRunAsRoot, func(w *Workload) {
		w.User = User{UID: 0, UserNamespace: true, UIDMappings: []IDMapping{{ContainerID: 1, HostID: 0, Size: 10}, {ContainerID: 0, HostID: 200000, Size: 1}}}
	}); bad {
		t.Error("uid 0 mapped to 200000 by the second mapping is not root")
	}
	if _, bad := tweak(t, p, RuleRunAsRoot, func(w *Workload) {
		w.User = User{UID: 0, UserNamespace: true, UIDMappings: []IDMapping{{ContainerID: 0, HostID: 4294967295, Size: 4294967295}}}
	}); bad {
		t.Error("a huge mapping must not overflow")
	}
}
