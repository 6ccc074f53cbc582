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
	fix:    fixCapabilities,
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
	// In this order the three sets that usually match are neighbours.
	sets := [...]struct {
		name string
		list []string
	}{
		{"ambient", caps.Ambient},
		{"inheritable", caps.Inheritable},
		{"bounding", caps.Bounding},
		{"effective", caps.Effective},
		{"permitted", caps.Permitted},
	}
	clean := true
	for i, s := range sets {
		if i > 0 && slices.Equal(s.list, sets[i-1].list) {
			continue // effective, permitted and bounding are usually the same
		}
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
	for i, s := range sets {
		hit := false
		same := i > 0 && slices.Equal(s.list, sets[i-1].list)
		for _, name := range s.list {
			if _, ok := c.caps[capName(name)]; !ok {
				hit = true
				if same {
					break // its names are already in bad
				}
				if !strings.HasPrefix(name, "CAP_") {
					name = "CAP_" + name
				}
				bad = append(bad, name)
			}
		}
		if hit {
			where = append(where, s.name)
		}
	}
	slices.Sort(where)
	slices.Sort(bad)
	bad = slices.Compact(bad)
	return fmt.Sprintf("%s must not include %s in process.capabilities (%s)",
		subject(w), quoteList(bad), strings.Join(where, ", ")), true
}

// fixCapabilities: a pod gets capabilities beyond the runtime's default set
// only from securityContext.capabilities.add (Pod Security baseline: "must
// not include ... in securityContext.capabilities.add", names without CAP_).
func fixCapabilities(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "must not add them in securityContext.capabilities.add (names without CAP_)",
		"run without --cap-add for them")
}
