package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule capabilities
//
// Why: capabilities beyond the runtime's default set (CAP_SYS_ADMIN,
// CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_BPF, ...) expose kernel interfaces that
// an unprivileged container never needs and that carry most container-escape
// bugs. A capability in any set counts: one in the bounding or inheritable set
// can be regained through execve of a file with that file capability.
//
// Reads: process.capabilities bounding, effective, permitted, inheritable and
// ambient (Workload.Capabilities).
//
// Allowed: capabilities listed in rules.capabilities.allowed (default:
// containerd's and Docker's default set), in every set.
//
// Parameters: allowed.
var capabilitiesRule = containerRule{
	id:     RuleCapabilities,
	reason: "non-default capabilities",
	needs:  FieldCapabilities,
	check:  checkCapabilities,
}

// capName strips the CAP_ prefix that OCI uses.
func capName(c string) string {
	if len(c) > 4 && c[:4] == "CAP_" {
		return c[4:]
	}
	return c
}

func checkCapabilities(c *compiled, w *Workload) (string, bool) {
	caps := &w.Capabilities
	sets := [...]struct {
		name string
		list []string
	}{
		{"ambient", caps.Ambient},
		{"bounding", caps.Bounding},
		{"effective", caps.Effective},
		{"inheritable", caps.Inheritable},
		{"permitted", caps.Permitted},
	}
	clean := true
	for _, s := range sets {
		for _, name := range s.list {
			if _, ok := c.caps[capName(name)]; !ok {
				clean = false
				break
			}
		}
	}
	if clean {
		return "", false
	}
	var bad, where []string
	for _, s := range sets {
		hit := false
		for _, name := range s.list {
			if _, ok := c.caps[capName(name)]; !ok {
				hit = true
				bad = append(bad, "CAP_"+capName(name))
			}
		}
		if hit {
			where = append(where, s.name)
		}
	}
	slices.Sort(bad)
	bad = slices.Compact(bad)
	return fmt.Sprintf("%s must not include %s in process.capabilities (%s)",
		subject(w), quoteList(bad), strings.Join(where, ", ")), true
}
