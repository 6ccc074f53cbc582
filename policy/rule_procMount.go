package policy

import (
	"fmt"
	"strings"
)

// Rule procMount
//
// Why: runtimes mask parts of /proc (/proc/kcore, /proc/keys,
// /proc/timer_list, ...) and make others read-only (/proc/sys,
// /proc/sysrq-trigger, /proc/irq, /proc/bus). Kubernetes' procMount=Unmasked,
// like privileged, drops both lists and exposes kernel memory and knobs to the
// container.
//
// Reads: linux.maskedPaths and linux.readonlyPaths (Workload.MaskedPaths,
// ReadonlyPaths).
//
// Allowed: at least one /proc path masked and at least one /proc path
// read-only.
//
// Parameters: none.
var procMountRule = containerRule{
	id:     RuleProcMount,
	reason: "unmasked proc",
	needs:  FieldProcMount,
	check:  checkProcMount,
}

func hasProcPath(paths []string) bool {
	for _, p := range paths {
		if strings.HasPrefix(p, "/proc/") {
			return true
		}
	}
	return false
}

func checkProcMount(_ *compiled, w *Workload) (string, bool) {
	masked, ro := hasProcPath(w.MaskedPaths), hasProcPath(w.ReadonlyPaths)
	switch {
	case masked && ro:
		return "", false
	case !masked && !ro:
		return fmt.Sprintf("%s must not unmask /proc (no /proc paths in linux.maskedPaths or linux.readonlyPaths)", subject(w)), true
	case !masked:
		return fmt.Sprintf("%s must not unmask /proc (no /proc paths in linux.maskedPaths)", subject(w)), true
	default:
		return fmt.Sprintf("%s must not unmask /proc (no /proc paths in linux.readonlyPaths)", subject(w)), true
	}
}
