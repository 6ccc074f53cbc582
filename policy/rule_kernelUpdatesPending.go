package policy

// Rule kernelUpdatesPending
//
// Why: a provider that reports updates pending knows of fixes the kernel has
// not got yet. Nodes that must run only on a current kernel set
// spec.kernel.denyWhenUpdatesPending.
//
// Reads: KernelState.updatesPending.
//
// Allowed: denyWhenUpdatesPending is false, or updatesPending is false. A null
// updatesPending (no provider can tell) is judged by kernelStateUnknown.
//
// Action: spec.kernel.action.
var kernelUpdatesPendingRule = kernelRule{
	id:     RuleKernelUpdatesPending,
	reason: "kernel updates pending",
	part:   "updates",
	check:  checkKernelUpdatesPending,
	remedy: "the pending updates applied",
}

func checkKernelUpdatesPending(k *KernelSpec, s *KernelState) (string, bool) {
	if !k.DenyWhenUpdatesPending || s.UpdatesPending == nil || !*s.UpdatesPending {
		return "", false
	}
	return "the live-patch provider reports kernel updates pending (spec.kernel.denyWhenUpdatesPending)", true
}
