package policy

import (
	"path/filepath"
	"testing"
)

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
	// The same spec not vouched for (its io.kubernetes.cri.container-type
	// annotation written by anyone): its own linux.sysctl is judged, not
	// deferred (an attacker's podman --annotation made it go unjudged).
	w = fixtureWorkload(t, "sysctls-fail-cri")
	spec := loadFixtureFile(t, filepath.Join(specsDir, "sysctls-fail-cri", "config.json"))
	if spec.Annotations[AnnotationContainerType] != "container" {
		t.Fatal("sysctls-fail-cri is no longer a CRI container's spec: the test tests nothing")
	}
	// As podman --sysctl writes it: into the container's own spec.
	spec.Linux.Sysctl = map[string]string{"kernel.msgmax": "65536"}
	uw, err := FromSpec(spec, nil, FromSpecOptions{Source: "test", Container: w.Container})
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, deferred := outcome(t, everyRuleEnforced(t), uw, RuleSysctls); !bad || deferred {
		t.Errorf("a spec claiming to be a CRI container, not vouched for: violated=%v deferred=%v, want violated", bad, deferred)
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

// TestSysctlsKubernetesSafeSet: the default admits exactly the sysctls that
// Pod Security baseline admits for Kubernetes 1.32-1.36
// (k8s.io/pod-security-admission policy/check_sysctls.go,
// sysctlsAllowedV1Dot32), pod sysctls in the sandbox spec as the CRI writes
// them, and refuses the two that only 1.37 adds and everything else.
func TestSysctlsKubernetesSafeSet(t *testing.T) {
	p := everyRuleEnforced(t)
	safe := []string{
		"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
	}
	for _, name := range safe {
		w := fixtureWorkload(t, "sysctls-pass-cri")
		w.Sysctls = map[string]string{name: "1"}
		if v, bad, _ := outcome(t, p, w, RuleSysctls); bad {
			t.Errorf("%s refused: %s", name, v.Detail)
		}
	}
	if got := len(Default().Spec.Rules.Sysctls.Allowed); got != len(safe) {
		t.Errorf("default allowed has %d names, want %d", got, len(safe))
	}
	for _, name := range []string{
		"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat", // Kubernetes 1.37 only
		"net.ipv4.tcp_mem", "net.ipv4.tcp_rmem_x", "net.ipv4.tcp_keepalive", "kernel.shm_rmid_forced.x",
		"net.core.somaxconn", "kernel.core_pattern", "vm.overcommit_memory", "net.ipv4.ip_forward",
	} {
		w := fixtureWorkload(t, "sysctls-pass-cri")
		w.Sysctls = map[string]string{name: "1", "net.ipv4.tcp_rmem": "4096 87380 6291456"}
		v, bad, _ := outcome(t, p, w, RuleSysctls)
		if want := `container "app" must not set sysctl "` + name + `" (linux.sysctl)`; !bad || v.Detail != want {
			t.Errorf("%s: violated=%v detail %q, want %q", name, bad, v.Detail, want)
		}
	}
}
