package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Rule procMount
//
// Why: runtimes mask parts of /proc and /sys (/proc/kcore, /proc/keys,
// /proc/timer_list, /sys/firmware, ...) and make others read-only
// (/proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus). Kubernetes'
// procMount=Unmasked, like privileged, drops both lists. Dropping even one
// entry matters: a writable /proc/sys is the host's kernel.core_pattern (a
// program the host runs as root on the next crash) and every other
// non-namespaced sysctl. A second proc mount is not covered by the lists at
// all (they name paths under /proc only).
//
// Reads: linux.maskedPaths and linux.readonlyPaths, and the proc mounts
// (Workload.MaskedPaths, ReadonlyPaths, Mounts).
//
// Allowed: every path of rules.procMount.maskedPaths masked (it, or a
// directory above it, in linux.maskedPaths), every path of
// rules.procMount.readonlyPaths read-only or masked, and at most one proc
// mount, at /proc. The defaults are the intersection of what containerd,
// runc, podman and the kubelet mask and make read-only (see basePolicy), so
// each runtime's default spec passes and any container that drops an entry
// does not.
//
// Parameters: maskedPaths, readonlyPaths.
var procMountRule = containerRule{
	id:     RuleProcMount,
	reason: "unmasked proc",
	needs:  FieldProcMount,
	check:  checkProcMount,
	fix:    fixProcMount,
}

// coveredBy reports whether p is one of list or lies under one, each entry
// cleaned. Runtimes write clean paths, so the entries are first compared as
// written, and cleaned only when that finds nothing.
func coveredBy(p string, list []string) bool {
	for _, q := range list {
		if q != "" && q[0] == '/' && underDir(p, q) {
			return true
		}
	}
	for _, q := range list {
		if c := cleanPath(q); c != q && underDir(p, c) {
			return true
		}
	}
	return false
}

func checkProcMount(c *compiled, w *Workload) (string, bool) {
	var unmasked, writable, extra []string
	for _, p := range c.procMasked {
		if !coveredBy(p, w.MaskedPaths) {
			unmasked = append(unmasked, p)
		}
	}
	for _, p := range c.procReadonly {
		if !coveredBy(p, w.ReadonlyPaths) && !coveredBy(p, w.MaskedPaths) {
			writable = append(writable, p)
		}
	}
	procs := 0
	for i := range w.Mounts {
		m := &w.Mounts[i]
		if m.Type != "proc" || isBind(m) {
			continue
		}
		procs++
		if procs > 1 || cleanPath(m.Destination) != "/proc" {
			extra = append(extra, m.Destination)
		}
	}
	if len(unmasked) == 0 && len(writable) == 0 && len(extra) == 0 {
		return "", false
	}
	var parts []string
	if len(unmasked) > 0 {
		slices.Sort(unmasked)
		parts = append(parts, strings.Join(unmasked, ", ")+" not in linux.maskedPaths")
	}
	if len(writable) > 0 {
		slices.Sort(writable)
		parts = append(parts, strings.Join(writable, ", ")+" not in linux.readonlyPaths")
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		parts = append(parts, "unmasked proc "+plural(len(extra), "mount", "mounts")+" at "+strings.Join(extra, ", ")+" (mounts)")
	}
	return fmt.Sprintf("%s must not unmask /proc: %s", subject(w), strings.Join(parts, "; ")), true
}

// fixProcMount: Pod Security's wording for procMount; podman unmasks with
// --security-opt unmask=... (and --privileged, folded into that rule).
func fixProcMount(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, `must not set securityContext.procMount to "Unmasked"`, "run without --security-opt unmask")
}
