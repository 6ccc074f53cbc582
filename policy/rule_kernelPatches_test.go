package policy

import "testing"

func TestKernelPatches(t *testing.T) {
	p := kernelPolicy(t, "{requiredPatches: [livepatch_sample, kpatch_cve_2024_1086, klp_off]}")
	k := kernelFixture(t, "patched")
	k.Patches = append(k.Patches, Patch{Name: "klp_off", Enabled: false, Provider: "sysfs"})
	d, bad, behind := kernelOutcome(t, p, k, RuleKernelPatches)
	want := `required live patches are not in force: "klp_off" (disabled), "kpatch_cve_2024_1086" (not loaded) (spec.kernel.requiredPatches)`
	if !bad || !behind || d != want {
		t.Errorf("got %v %v %q, want %q", bad, behind, d, want)
	}
	d, bad, _ = kernelOutcome(t, kernelPolicy(t, "{requiredPatches: [livepatch_sample]}"), kernelFixture(t, "behind"), RuleKernelPatches)
	if !bad || d != `required live patch is not in force: "livepatch_sample" (in transition) (spec.kernel.requiredPatches)` {
		t.Errorf("in transition: %v %q", bad, d)
	}
	if _, bad, behind := kernelOutcome(t, kernelPolicy(t, "{requiredPatches: [livepatch_sample]}"), kernelFixture(t, "patched"), RuleKernelPatches); bad || behind {
		t.Errorf("patched: violated=%v behind=%v", bad, behind)
	}
	// Patches unknown: kernelStateUnknown speaks, kernelPatches does not pass
	// or fail on what it cannot see.
	k = kernelFixture(t, "patched")
	k.Patches = nil
	k.Unknown = []UnknownPart{{Part: "patches", Provider: "kpatch", Reason: "kpatch list: exit status 1"}}
	p = kernelPolicy(t, "{requiredPatches: [livepatch_sample]}")
	if _, bad, _ := kernelOutcome(t, p, k, RuleKernelPatches); bad {
		t.Error("kernelPatches judged unknown patches")
	}
	if d, bad, behind := kernelOutcome(t, p, k, RuleKernelStateUnknown); !bad || !behind || d != "kernel live-patch state unknown: patches (kpatch): kpatch list: exit status 1" {
		t.Errorf("unknown patches: %v %v %q", bad, behind, d)
	}
}
