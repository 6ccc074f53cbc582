package policy

import "testing"

func TestKernelCVEs(t *testing.T) {
	p := kernelPolicy(t, "{requiredCVEs: [cve-2024-1086, CVE-2023-0386, CVE-2024-1086]}")
	k := kernelFixture(t, "patched")
	d, bad, behind := kernelOutcome(t, p, k, RuleKernelCVEs)
	if want := "CVEs are not reported fixed by any live-patch provider: CVE-2023-0386, CVE-2024-1086 (spec.kernel.requiredCVEs)"; !bad || !behind || d != want {
		t.Errorf("got %v %q, want %q", bad, d, want)
	}
	k.FixedCVEs = []string{"CVE-2023-0386", "CVE-2024-1086"}
	if _, bad, behind := kernelOutcome(t, p, k, RuleKernelCVEs); bad || behind {
		t.Errorf("all fixed: violated=%v behind=%v", bad, behind)
	}
	k.FixedCVEs = nil
	k.Unknown = []UnknownPart{{Part: "cves", Provider: "kernelcare", Reason: "kcarectl: not found"}}
	if _, bad, _ := kernelOutcome(t, p, k, RuleKernelCVEs); bad {
		t.Error("kernelCVEs judged unknown CVEs")
	}
	if _, bad, _ := kernelOutcome(t, p, k, RuleKernelStateUnknown); !bad {
		t.Error("unknown CVEs not reported")
	}
}
