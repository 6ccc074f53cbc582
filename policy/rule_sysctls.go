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
// Kubernetes safe set).
//
// Parameters: allowed.
var sysctlsRule = containerRule{
	id:     RuleSysctls,
	reason: "unsafe sysctls",
	needs:  FieldSysctls,
	check:  checkSysctls,
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
