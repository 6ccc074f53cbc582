package policy

import (
	"slices"
	"testing"
)

func TestValidateRegistry(t *testing.T) {
	if err := ValidateRegistry(); err != nil {
		t.Fatal(err)
	}
}

func TestRuleIDsAreTheContract(t *testing.T) {
	want := []string{"runAsRoot", "privileged", "capabilities", "hostNamespaces", "hostPathMounts",
		"hostDevices", "privilegeEscalation", "seccomp", "apparmor", "sysctls", "procMount",
		"kernelPatches", "kernelCVEs", "kernelVersion", "kernelUpdatesPending", "kernelStateUnknown"}
	if got := RuleIDs(); !slices.Equal(got, want) {
		t.Fatalf("RuleIDs() = %v, want %v", got, want)
	}
	for _, id := range want {
		if !IsRuleID(id) {
			t.Errorf("IsRuleID(%q) = false", id)
		}
	}
	if IsRuleID("RunAsRoot") || IsRuleID("") {
		t.Error("IsRuleID accepts a name that is not a rule")
	}
}

func TestDefaultLoads(t *testing.T) {
	p := Default()
	if p.Name() != "default" || len(p.Digest()) != len("sha256:")+64 {
		t.Fatalf("Default() = %q %q", p.Name(), p.Digest())
	}
	if p.Spec.Rules.Seccomp.Action != ActionWarn || p.Spec.Rules.AppArmor.Action != ActionAudit {
		t.Fatalf("Default() rule actions: %+v", p.Spec.Rules)
	}
}
