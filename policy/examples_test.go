package policy

import (
	"path/filepath"
	"testing"
)

// examplePolicies decodes and validates every shipped example policy with the
// real loader.
func examplePolicies(t *testing.T) []*Policy {
	t.Helper()
	files, err := filepath.Glob("../examples/policies/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"baseline.yaml": true, "restricted.yaml": true, "kernel-aware.yaml": true, "audit-only.yaml": true}
	var out []*Policy
	for _, f := range files {
		p, err := Load(f, "")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		delete(want, filepath.Base(f))
		out = append(out, p)
	}
	for f := range want {
		t.Errorf("example policy %s is missing", f)
	}
	return out
}

func TestExamplePoliciesLoad(t *testing.T) {
	ps := examplePolicies(t)
	names := map[string]bool{}
	for _, p := range ps {
		if names[p.Name()] {
			t.Errorf("two examples named %q", p.Name())
		}
		names[p.Name()] = true
	}
}

// TestExamplePolicyDirectory loads the drop-in layout example as two nodes.
func TestExamplePolicyDirectory(t *testing.T) {
	dir := "../examples/policy-dir"
	gpu, err := Load(dir, "gpu-worker-1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := Load(dir, "worker-2")
	if err != nil {
		t.Fatal(err)
	}
	if gpu.Name() != "fleet-gpu" || other.Name() != "fleet" {
		t.Errorf("names %q %q", gpu.Name(), other.Name())
	}
	if len(gpu.Sources) != 4 || len(other.Sources) != 3 {
		t.Errorf("sources %v / %v", gpu.Sources, other.Sources)
	}
	for _, p := range []*Policy{gpu, other} {
		if len(p.Spec.Exemptions) != 2 || len(p.Spec.Kernel.RequiredPatches) != 1 || p.Spec.Rules.RunAsRoot.WhenKernelBehind != ActionEnforce {
			t.Errorf("%s: drop-ins not merged: %+v", p.Name(), p.Spec)
		}
	}
	w := &Workload{Seen: FieldsAll, Container: ContainerIdentity{Name: "cuda"}, Devices: []Device{{Path: "/dev/nvidia0", Type: "c", Major: 195, Minor: 0}, {Path: "/dev/nvidiactl", Type: "c", Major: 195, Minor: 255}},
		User: User{UID: 1000}, NoNewPrivileges: true, AppArmorProfile: "p",
		// runc's defaults (`runc spec`)
		MaskedPaths:   []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		Seccomp:       SeccompSummary{DefaultAction: "SCMP_ACT_ERRNO", DefaultBlocks: true}}
	k := kernelFixture(t, "patched")
	if d := Evaluate(gpu, w, k, testNow); d.Verdict != Allow {
		t.Errorf("gpu node: %s %+v", d.Verdict, d.Violations)
	}
	if d := Evaluate(other, w, k, testNow); d.Verdict != Deny {
		t.Errorf("other node: %s", d.Verdict)
	}
}
