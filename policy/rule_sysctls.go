package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule sysctls
//
// Why: most sysctls are not namespaced and change the shared kernel for every
// container on the node (kernel.*, vm.*), or weaken it (kernel.unprivileged_*,
// net.core.bpf_jit_*). Kubernetes' "safe" set is namespaced and harmless.
//
// Reads: linux.sysctl of the container and of its sandbox (pod sysctls are in
// the sandbox's spec only) (Workload.Sysctls). Names written with / are read
// as with dots.
//
// Allowed: names listed in rules.sysctls.allowed (globs; default: the
// Kubernetes safe set of Pod Security baseline 1.32 to 1.36, below). Every
// other name is refused.
//
// Parameters: allowed.
var sysctlsRule = containerRule{
	id:     RuleSysctls,
	reason: "unsafe sysctls",
	needs:  FieldSysctls,
	check:  checkSysctls,
	fix:    fixSysctls,
}

// kubernetesSafeSysctls is the default of rules.sysctls.allowed: the sysctls
// that Pod Security baseline admits for Kubernetes 1.32 up to 1.36 (the 1.34
// the PSA conformance fixtures are written for), which are the names the
// kubelet of those versions accepts without --allowed-unsafe-sysctls. Source:
// k8s.io/pod-security-admission v0.37.0, policy/check_sysctls.go,
// sysctlsAllowedV1Dot32 (V1Dot0's five, ip_local_reserved_ports from 1.27,
// the four tcp_keepalive/fin_timeout names from 1.29, tcp_rmem and tcp_wmem
// from 1.32). The list is versioned there: 1.37 adds
// net.ipv4.tcp_slow_start_after_idle and net.ipv4.tcp_notsent_lowat
// (sysctlsAllowedV1Dot37); a cluster that enforces Pod Security at 1.37 adds
// them to rules.sysctls.allowed. Exact names, no globs: baseline admits
// exactly these.
var kubernetesSafeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
}

func (c *compiled) sysctlAllowed(name string) bool {
	if strings.Contains(name, "/") {
		name = strings.ReplaceAll(name, "/", ".")
	}
	if _, ok := c.sysctlExact[name]; ok {
		return true
	}
	for _, g := range c.sysctlGlobs {
		if globMatch(g, name) {
			return true
		}
	}
	return false
}

func checkSysctls(c *compiled, w *Workload) (string, bool) {
	var bad []string
	for name := range w.Sysctls {
		if !c.sysctlAllowed(name) {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return "", false
	}
	slices.Sort(bad)
	return fmt.Sprintf("%s must not set %s %s (linux.sysctl)",
		subject(w), plural(len(bad), "sysctl", "sysctls"), quoteList(bad)), true
}

// fixSysctls: a pod's sysctls are spec.securityContext.sysctls (Pod
// Security "forbidden sysctls"); podman's --sysctl.
func fixSysctls(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "must not set them in spec.securityContext.sysctls", "run without --sysctl for them")
}
