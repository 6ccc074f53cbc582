package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule kernelCVEs
//
// Why: operators track kernel vulnerabilities by CVE. A node that must not run
// workloads while a given kernel CVE is open lists it; the live-patch provider
// (KernelCare's cvelist, Canonical Livepatch's fixes) says which CVEs the
// running kernel is patched against.
//
// Reads: KernelState.fixedCVEs.
//
// Allowed: every ID in spec.kernel.requiredCVEs (compared upper case) is in
// fixedCVEs.
//
// Action: spec.kernel.action.
var kernelCVEsRule = kernelRule{
	id:     RuleKernelCVEs,
	reason: "kernel CVE not fixed",
	part:   "cves",
	check:  checkKernelCVEs,
	remedy: "a live patch that fixes the CVE",
}

func checkKernelCVEs(k *KernelSpec, s *KernelState) (string, bool) {
	var missing []string
	for _, id := range k.RequiredCVEs {
		found := false
		for _, f := range s.FixedCVEs {
			if strings.EqualFold(f, id) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, strings.ToUpper(id))
		}
	}
	if len(missing) == 0 {
		return "", false
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	return fmt.Sprintf("%s not reported fixed by any live-patch provider: %s (spec.kernel.requiredCVEs)",
		plural(len(missing), "CVE is", "CVEs are"), strings.Join(missing, ", ")), true
}
