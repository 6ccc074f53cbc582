package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule kernelPatches
//
// Why: a live patch fixes the running kernel only once it is enabled and its
// transition has finished (every task switched to the patched code). A patch
// that is loaded but still transitioning, disabled, or absent leaves the
// shared kernel exploitable by every container on the node.
//
// Reads: KernelState.patches (name, enabled, transition).
//
// Allowed: every name in spec.kernel.requiredPatches is a patch that is
// enabled and not in transition.
//
// Action: spec.kernel.action.
var kernelPatchesRule = kernelRule{
	id:     RuleKernelPatches,
	reason: "live patch missing",
	part:   "patches",
	check:  checkKernelPatches,
	remedy: "the required live patch in force",
}

func checkKernelPatches(k *KernelSpec, s *KernelState) (string, bool) {
	var bad []string
	for _, name := range k.RequiredPatches {
		state := "not loaded"
		for _, p := range s.Patches {
			if p.Name != name {
				continue
			}
			switch {
			case p.InForce():
				state = ""
			case !p.Enabled:
				state = "disabled"
			default:
				state = "in transition"
			}
			if state == "" {
				break
			}
		}
		if state != "" {
			bad = append(bad, fmt.Sprintf("%q (%s)", name, state))
		}
	}
	if len(bad) == 0 {
		return "", false
	}
	slices.Sort(bad)
	return fmt.Sprintf("required live %s not in force: %s (spec.kernel.requiredPatches)",
		plural(len(bad), "patch is", "patches are"), strings.Join(bad, ", ")), true
}

// plural picks the singular or plural phrase.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
