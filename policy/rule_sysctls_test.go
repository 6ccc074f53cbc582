package policy

import "testing"

func TestSysctls(t *testing.T) {
	testRuleOnFixtures(t, RuleSysctls, []ruleFixtureCase{
		{"baseline", ""},
		{"sysctls-pass-cri", ""},
		{"sysctls-fail-cri", `container "app" must not set sysctl "kernel.msgmax" (linux.sysctl)`},
	})
	testRuleDeferred(t, RuleSysctls, FieldSysctls)
	w := fixtureWorkload(t, "hostNamespaces-deferred-cri")
	if _, bad, deferred := outcome(t, everyRuleEnforced(t), w, RuleSysctls); bad || !deferred {
		t.Errorf("CRI container without its sandbox spec: violated=%v deferred=%v, want deferred", bad, deferred)
	}
	p, err := LoadBytes("s.yaml", []byte(header+"metadata: {name: s}\nspec: {rules: {sysctls: {allowed: [\"net.ipv4.tcp_*\"]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, bad := tweak(t, p, RuleSysctls, func(w *Workload) {
		w.Sysctls = map[string]string{"net/ipv4/tcp_keepalive_time": "60", "vm.swappiness": "1", "kernel.shm_rmid_forced": "1"}
	})
	if want := `container "app" must not set sysctls "kernel.shm_rmid_forced", "vm.swappiness" (linux.sysctl)`; !bad || v.Detail != want {
		t.Errorf("got %q, want %q", v.Detail, want)
	}
}
