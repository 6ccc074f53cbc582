package policy

import (
	"fmt"
	"strings"
)

// Rule apparmor
//
// Why: the runtime's default AppArmor profile denies writes to /proc and /sys
// knobs and mount(2), narrowing what a compromised process can do to the
// shared kernel. Pod Security baseline forbids only an explicit Unconfined
// (k8s.io/pod-security-admission policy/check_appArmorProfile.go: allowed are
// RuntimeDefault, Localhost and unset); so does this rule unless
// requireProfile is set.
//
// Reads: process.apparmorProfile (Workload.AppArmorProfile).
//
// What the runtimes write: containerd's CRI writes no profile for Unconfined,
// for a privileged container's RuntimeDefault, and for every container on a
// host without AppArmor, and its own "cri-containerd.apparmor.d" for
// RuntimeDefault or an unset profile on a host with AppArmor
// (internal/cri/sputil/apparmor_linux.go GenerateApparmorSpecOpts, v2.4.2);
// runc, CRI-O and podman pass "unconfined" through. An empty profile cannot
// tell Unconfined from unset under containerd by itself; so the front ends
// (hook, eval --host-root) tell the rule whether the host enforces AppArmor
// (Workload.HostAppArmor): there an empty profile runs unconfined and is a
// violation. On a host without AppArmor every container runs without a
// profile, and an empty one is a violation only with requireProfile.
//
// Allowed: any profile that is not unconfined. The kernel reads the name
// after trimming spaces, and a name that is only a namespace (":ns:") is that
// namespace's unconfined profile; a leading "&" stacks onto the runtime's own
// (unconfined) label. So " unconfined", "&unconfined", ":root:unconfined" and
// ":root:" all count as unconfined.
//
// The name is not the effect: a host loads profiles that confine nothing
// (Ubuntu 24.04 loads "runc", "podman", "busybox", ... with
// flags=(unconfined)), and a profile in complain mode only logs. Where the
// host enforces AppArmor the front ends look the named profile up in the
// kernel's list of loaded profiles (Workload.AppArmorMode, from
// <hostRoot>/sys/kernel/security/apparmor/profiles): a profile (or any
// component of a stack) that is not in enforce or kill mode counts as
// unconfined. A profile that is not loaded is refused too: the runtime
// would fail to apply it, so refusing costs nothing, and patchgate does
// not rely on how each runtime reacts (runc skips AppArmor altogether where
// securityfs does not show it). A list that cannot be read is refused.
//
// Parameters: requireProfile (default true; false in the shipped baseline and
// restricted policies, as in Pod Security).
var apparmorRule = containerRule{
	id:     RuleAppArmor,
	reason: "apparmor unconfined",
	needs:  FieldAppArmor,
	check:  checkAppArmor,
	fix:    fixAppArmor,
}

// appArmorUnconfined reports whether profile, a non-empty
// process.apparmorProfile, names an unconfined profile.
func appArmorUnconfined(profile string) bool {
	name := strings.TrimSpace(profile)
	name = strings.TrimSpace(strings.TrimPrefix(name, "&"))
	if strings.HasPrefix(name, ":") {
		// ":ns:profile" or ":ns//profile".
		rest := name[1:]
		i := strings.IndexAny(rest, ":/")
		if i < 0 {
			return true // only a namespace: its unconfined profile
		}
		name = strings.TrimLeft(rest[i:], ":/ \t\n")
		if name == "" {
			return true
		}
	}
	return name == "unconfined"
}

func checkAppArmor(c *compiled, w *Workload) (string, bool) {
	if strings.TrimSpace(w.AppArmorProfile) == "" {
		if w.HostAppArmor {
			// On a host that enforces AppArmor the runtimes write their
			// default profile for RuntimeDefault and unset; empty is an
			// explicit Unconfined (containerd) or no profile at all.
			return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile is empty on a host that enforces AppArmor)", subject(w)), true
		}
		if !c.apparmorReq {
			return "", false
		}
		return fmt.Sprintf("%s must set an AppArmor profile (process.apparmorProfile is empty)", subject(w)), true
	}
	if appArmorUnconfined(w.AppArmorProfile) {
		return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile=%q)", subject(w), w.AppArmorProfile), true
	}
	switch mode := w.AppArmorMode; {
	case mode == "" || appArmorConfining(mode):
	case mode == AppArmorModeNotLoaded:
		return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile=%q is not loaded on the host)", subject(w), w.AppArmorProfile), true
	case mode == AppArmorModeUnreadable:
		return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile=%q: the host's loaded profiles cannot be read)", subject(w), w.AppArmorProfile), true
	default:
		return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile=%q is loaded in %s mode)", subject(w), w.AppArmorProfile, mode), true
	}
	return "", false
}

// fixAppArmor: Pod Security's wording for the AppArmor profile; a Localhost
// profile must be loaded on the node in enforce mode.
func fixAppArmor(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, `must set securityContext.appArmorProfile.type to "RuntimeDefault" (or "Localhost" with a profile loaded in enforce mode), not "Unconfined"`,
		"run without --security-opt apparmor=unconfined, with the default profile or one loaded in enforce mode")
}
