package policy

import (
	"slices"
	"testing"
)

func TestProcMount(t *testing.T) {
	testRuleOnFixtures(t, RuleProcMount, []ruleFixtureCase{
		{"baseline", ""},
		{"procMount-fail-proc-sys", `container "app" must not unmask /proc: /proc/sys not in linux.readonlyPaths`},
		{"procMount-fail-second-proc", `container "app" must not unmask /proc: unmasked proc mount at /hostproc (mounts)`},
		{"procMount-fail", `container "app" must not unmask /proc: /proc/acpi, /proc/kcore, /proc/keys, /proc/latency_stats, /proc/sched_debug, /proc/scsi, /proc/timer_list, /proc/timer_stats, /sys/firmware not in linux.maskedPaths; /proc/asound, /proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger not in linux.readonlyPaths`},
	})
	testRuleDeferred(t, RuleProcMount, FieldProcMount)
	p := everyRuleEnforced(t)
	without := func(list []string, drop string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == drop })
	}
	const pre = `container "app" must not unmask /proc: `
	for _, tc := range []struct {
		name   string
		f      func(w *Workload)
		detail string
	}{
		// The review's bypass: only /proc/sys made writable (the host's
		// kernel.core_pattern).
		{"/proc/sys writable", func(w *Workload) { w.ReadonlyPaths = without(w.ReadonlyPaths, "/proc/sys") }, pre + `/proc/sys not in linux.readonlyPaths`},
		{"/proc/kcore unmasked", func(w *Workload) { w.MaskedPaths = without(w.MaskedPaths, "/proc/kcore") }, pre + `/proc/kcore not in linux.maskedPaths`},
		{"/sys/firmware unmasked", func(w *Workload) { w.MaskedPaths = without(w.MaskedPaths, "/sys/firmware") }, pre + `/sys/firmware not in linux.maskedPaths`},
		{"readonly paths dropped", func(w *Workload) { w.ReadonlyPaths = nil }, pre + `/proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger not in linux.readonlyPaths`},
		{"a second proc", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/hostproc", Type: "proc", Source: "proc"})
		}, pre + `unmasked proc mount at /hostproc (mounts)`},
		{"proc twice at /proc", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/proc/", Type: "proc", Source: "proc"})
		}, pre + `unmasked proc mount at /proc/ (mounts)`},
		// Controls.
		{"/proc/sys masked instead", func(w *Workload) {
			w.ReadonlyPaths = without(w.ReadonlyPaths, "/proc/sys")
			w.MaskedPaths = append(w.MaskedPaths, "/proc/sys")
		}, ""},
		{"a parent masked", func(w *Workload) { w.MaskedPaths = append(without(w.MaskedPaths, "/proc/kcore"), "/proc/") }, ""},
		{"more than the defaults", func(w *Workload) { w.MaskedPaths = append(w.MaskedPaths, "/proc/cpuinfo") }, ""},
	} {
		v, bad := tweak(t, p, RuleProcMount, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v\n got  %s\n want %s", tc.name, bad, v.Detail, tc.detail)
		}
	}
	// The lists are parameters: a node that allows a writable /proc/sys
	// says so.
	lax, err := LoadBytes("lax.yaml", []byte(header+"metadata: {name: lax}\nspec: {rules: {procMount: {readonlyPaths: [/proc/sysrq-trigger]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, bad := tweak(t, lax, RuleProcMount, func(w *Workload) { w.ReadonlyPaths = []string{"/proc/sysrq-trigger"} }); bad {
		t.Errorf("readonlyPaths parameter ignored: %s", v.Detail)
	}
	if _, err := LoadBytes("bad.yaml", []byte(header+"spec: {rules: {procMount: {maskedPaths: [proc/kcore, /]}}}\n")); err == nil {
		t.Error("relative and / masked paths loaded")
	}
}
