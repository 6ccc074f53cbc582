package policy

import (
	"testing"
	"time"
)

func TestKernelStateUnknown(t *testing.T) {
	p := kernelPolicy(t, "{requiredPatches: [livepatch_sample], maxStateAge: 10m}")
	for _, tc := range []struct {
		name   string
		k      func() *KernelState
		detail string
	}{
		{"nil", func() *KernelState { return nil }, "kernel live-patch state was not read"},
		{"fresh", func() *KernelState { return kernelFixture(t, "patched") }, ""},
		{"stale", func() *KernelState {
			k := kernelFixture(t, "patched")
			k.ObservedAt = testNow.Add(-11 * time.Minute)
			return k
		}, "kernel live-patch state is 11m old, more than spec.kernel.maxStateAge 10m (observedAt 2026-11-27T11:54:00Z)"},
		{"no time", func() *KernelState {
			k := kernelFixture(t, "patched")
			k.ObservedAt = time.Time{}
			return k
		}, "kernel live-patch state has no observedAt time"},
		{"all unknown", func() *KernelState { return kernelFixture(t, "unknown") }, "kernel live-patch state unknown: all (sysfs): open /sys/kernel/livepatch: permission denied"},
		{"unknown without a time", func() *KernelState {
			return &KernelState{Unknown: []UnknownPart{{Part: "all", Reason: "no kernel state from the service"}}}
		}, "kernel live-patch state has no observedAt time; unknown: all: no kernel state from the service"},
		{"unneeded part unknown", func() *KernelState {
			k := kernelFixture(t, "patched")
			k.Unknown = []UnknownPart{{Part: "cves", Provider: "sysfs", Reason: "sysfs does not report CVEs"}}
			return k
		}, ""},
	} {
		d, bad, behind := kernelOutcome(t, p, tc.k(), RuleKernelStateUnknown)
		if (tc.detail != "") != bad || d != tc.detail || bad != behind {
			t.Errorf("%s: violated=%v behind=%v %q, want %q", tc.name, bad, behind, d, tc.detail)
		}
		// Whatever is unknown, no other kernel rule passes or fails on it.
		if tc.detail != "" {
			vs, _ := EvaluateKernel(p, tc.k(), testNow)
			for _, v := range vs {
				if v.Rule != RuleKernelStateUnknown {
					t.Errorf("%s: %s judged unknown state", tc.name, v.Rule)
				}
			}
		}
	}
	// The action is spec.kernel.onUnknown; off silences it.
	vs, behind := EvaluateKernel(kernelPolicy(t, "{onUnknown: enforce}"), nil, testNow)
	if len(vs) != 1 || vs[0].Action != ActionEnforce || !behind {
		t.Errorf("onUnknown enforce: %+v %v", vs, behind)
	}
	if vs, behind := EvaluateKernel(kernelPolicy(t, "{onUnknown: off}"), nil, testNow); len(vs) != 0 || behind {
		t.Errorf("onUnknown off: %+v %v", vs, behind)
	}
}
