package policy

import "testing"

func TestKernelUpdatesPending(t *testing.T) {
	p := kernelPolicy(t, "{denyWhenUpdatesPending: true}")
	k := kernelFixture(t, "patched")
	yes := true
	k.UpdatesPending = &yes
	if d, bad, behind := kernelOutcome(t, p, k, RuleKernelUpdatesPending); !bad || !behind || d != "the live-patch provider reports kernel updates pending (spec.kernel.denyWhenUpdatesPending)" {
		t.Errorf("pending: %v %v %q", bad, behind, d)
	}
	if _, bad, _ := kernelOutcome(t, kernelPolicy(t, "{denyWhenUpdatesPending: false}"), k, RuleKernelUpdatesPending); bad {
		t.Error("pending updates judged although denyWhenUpdatesPending is false")
	}
	k.UpdatesPending = nil
	if _, bad, _ := kernelOutcome(t, p, k, RuleKernelUpdatesPending); bad {
		t.Error("null updatesPending judged by kernelUpdatesPending")
	}
	if d, bad, _ := kernelOutcome(t, p, k, RuleKernelStateUnknown); !bad || d != "kernel live-patch state unknown: updates: no provider reports whether updates are pending" {
		t.Errorf("null updatesPending: %v %q", bad, d)
	}
}
