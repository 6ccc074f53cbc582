package policy

import "fmt"

// Rule apparmor
//
// Why: the runtime's default AppArmor profile denies writes to /proc and /sys
// knobs and mount(2), narrowing what a compromised process can do to the
// shared kernel. On hosts that use SELinux instead this rule always fires;
// keep it at audit (the default) or off there.
//
// Reads: process.apparmorProfile (Workload.AppArmorProfile).
//
// Allowed: a profile other than "" and "unconfined".
//
// Parameters: none.
var apparmorRule = containerRule{
	id:     RuleAppArmor,
	reason: "apparmor unconfined",
	needs:  FieldAppArmor,
	check:  checkAppArmor,
}

func checkAppArmor(_ *compiled, w *Workload) (string, bool) {
	switch w.AppArmorProfile {
	case "":
		return fmt.Sprintf("%s must set an AppArmor profile (process.apparmorProfile is empty)", subject(w)), true
	case "unconfined":
		return fmt.Sprintf("%s must not run AppArmor unconfined (process.apparmorProfile=%q)", subject(w), w.AppArmorProfile), true
	}
	return "", false
}
