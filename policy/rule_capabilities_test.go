package policy

import "testing"

func TestCapabilities(t *testing.T) {
	testRuleOnFixtures(t, RuleCapabilities, []ruleFixtureCase{
		{"baseline", ""},
		{"capabilities-pass-minimal", ""},
		{"capabilities-fail", `container "app" must not include "CAP_NET_ADMIN", "CAP_SYS_ADMIN" in process.capabilities (bounding, effective, permitted)`},
		{"capabilities-fail-ambient", `container "app" must not include "CAP_SYS_PTRACE" in process.capabilities (ambient, inheritable)`},
	})
	testRuleDeferred(t, RuleCapabilities, FieldCapabilities)

	// restricted narrows the allowed set: containerd's defaults then fail.
	p, err := LoadBytes("r.yaml", []byte(header+"metadata: {name: r}\nspec: {rules: {capabilities: {allowed: [cap_net_bind_service, CHOWN]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := fixtureWorkload(t, "baseline")
	v, bad, _ := outcome(t, p, w, RuleCapabilities)
	want := `container "app" must not include "CAP_AUDIT_WRITE", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT" in process.capabilities (bounding, effective, permitted)`
	if !bad || v.Detail != want {
		t.Errorf("narrowed set: %v\n got  %s\n want %s", bad, v.Detail, want)
	}
	// Every set counts, each alone.
	for _, set := range []string{"bounding", "effective", "permitted", "inheritable", "ambient"} {
		v, bad := tweak(t, everyRuleEnforced(t), RuleCapabilities, func(w *Workload) {
			w.Capabilities = Capabilities{}
			l := []string{"CAP_BPF"}
			switch set {
			case "bounding":
				w.Capabilities.Bounding = l
			case "effective":
				w.Capabilities.Effective = l
			case "permitted":
				w.Capabilities.Permitted = l
			case "inheritable":
				w.Capabilities.Inheritable = l
			case "ambient":
				w.Capabilities.Ambient = l
			}
		})
		if !bad || v.Detail != `container "app" must not include "CAP_BPF" in process.capabilities (`+set+`)` {
			t.Errorf("CAP_BPF in %s: %v %q", set, bad, v.Detail)
		}
	}
}
