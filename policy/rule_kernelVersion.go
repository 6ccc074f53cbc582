package policy

import (
	"fmt"

	"github.com/patchgate/patchgate/internal/kver"
)

// Rule kernelVersion
//
// Why: some fixes cannot be live-patched; the node must then run at least a
// given kernel. KernelCare and Ksplice report the version the running kernel
// is effectively patched up to, which is what counts. Versions are compared
// the distro's way (dpkg or rpm ordering, package internal/kver), never as
// semver: "5.15.0-91-generic" and "4.18.0-513.9.1.el8_9.x86_64" are not semver.
//
// Reads: KernelState.effectiveVersion (else release), KernelState.distro (else
// the family told from the release).
//
// Allowed: spec.kernel.minimumVersion is empty, or the effective version is
// not older than it. A version that cannot be compared is a violation, never
// a pass.
//
// Action: spec.kernel.action.
var kernelVersionRule = kernelRule{
	id:     RuleKernelVersion,
	reason: "kernel version too old",
	part:   "version",
	check:  checkKernelVersion,
	remedy: "an effective kernel version of at least spec.kernel.minimumVersion",
}

func checkKernelVersion(k *KernelSpec, s *KernelState) (string, bool) {
	if k.MinimumVersion == "" {
		return "", false
	}
	v, field := s.EffectiveVersion, "effectiveVersion"
	if v == "" {
		v, field = s.Release, "release"
	}
	if v == "" {
		return "the kernel state has no release or effectiveVersion to compare with spec.kernel.minimumVersion", true
	}
	family := s.Distro
	if family == "" {
		family = kver.Family(s.Release)
	}
	c, err := kver.Compare(v, k.MinimumVersion, family)
	if err != nil {
		return fmt.Sprintf("cannot compare kernel %s %q with spec.kernel.minimumVersion %q: %v", field, v, k.MinimumVersion, err), true
	}
	if c < 0 {
		return fmt.Sprintf("kernel %s %q is older than spec.kernel.minimumVersion %q", field, v, k.MinimumVersion), true
	}
	return "", false
}
