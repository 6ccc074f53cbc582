package policy

import "fmt"

// Rule privileged
//
// Why: a privileged container (docker --privileged, Kubernetes
// securityContext.privileged) has every capability, sees the host's /proc and
// /sys unmasked and can write to sysfs: it is root on the node in all but
// name. Runtimes do not record "privileged" in the OCI spec; it is recognised
// by what it does to the spec.
//
// Reads: process.capabilities.bounding, linux.maskedPaths, the sysfs mount at
// /sys (Workload.Capabilities, MaskedPaths, Mounts).
//
// Allowed: anything but all three of: a bounding set holding all capabilities,
// no masked paths, and /sys mounted sysfs without "ro". (Each part alone is
// judged by capabilities and procMount.) "All capabilities" is what the runtime
// itself holds (containerd's WithPrivileged copies cap.Current(), podman does
// the same), so a runtime that lacks a capability gives a privileged container
// one fewer: recorded here, podman in a sandbox without CAP_SYS_RESOURCE gave
// 40 of 41. The rule counts the 38 capabilities every supported kernel knows
// (up to CAP_AUDIT_READ) and takes CAP_SYS_ADMIN plus at most two missing as
// all.
//
// Parameters: none.
var privilegedRule = containerRule{
	id:     RulePrivileged,
	reason: "privileged",
	needs:  FieldPrivileged | FieldCapabilities,
	check:  checkPrivileged,
	fix:    fixPrivileged,
}

func checkPrivileged(_ *compiled, w *Workload) (string, bool) {
	if len(w.MaskedPaths) != 0 || !hasAllCapabilities(w.Capabilities.Bounding) || !writableSysfs(w.Mounts) {
		return "", false
	}
	return fmt.Sprintf("%s must not be privileged (all capabilities in process.capabilities.bounding, empty linux.maskedPaths, writable sysfs at /sys)", subject(w)), true
}

// maxMissingForAll is how many of the classic capabilities a bounding set may
// lack and still count as "all capabilities".
const maxMissingForAll = 2

func hasAllCapabilities(set []string) bool {
	missing := 0
	for _, want := range capabilityNames[:classicCapabilities] {
		found := false
		for _, c := range set {
			if capName(c) == want {
				found = true
				break
			}
		}
		if !found {
			if want == "SYS_ADMIN" {
				return false
			}
			missing++
		}
	}
	return missing <= maxMissingForAll
}

// writableSysfs reports whether /sys is a sysfs mount without the ro option.
func writableSysfs(mounts []Mount) bool {
	w := false
	for i := range mounts {
		m := &mounts[i]
		if m.Destination != "/sys" || m.Type != "sysfs" {
			continue
		}
		w = !hasOption(m.Options, "ro")
	}
	return w
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// fixPrivileged: Pod Security's wording for the same control.
func fixPrivileged(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "must not set securityContext.privileged=true", "run without --privileged")
}
