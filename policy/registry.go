package policy

import (
	"fmt"
	"reflect"
	"strings"
)

// Rule IDs. They are part of the policy file format and appear in audit
// records and metrics: never rename one.
const (
	RuleRunAsRoot            = "runAsRoot"
	RulePrivileged           = "privileged"
	RuleCapabilities         = "capabilities"
	RuleHostNamespaces       = "hostNamespaces"
	RuleHostPathMounts       = "hostPathMounts"
	RuleHostDevices          = "hostDevices"
	RulePrivilegeEscalation  = "privilegeEscalation"
	RuleSeccomp              = "seccomp"
	RuleAppArmor             = "apparmor"
	RuleSysctls              = "sysctls"
	RuleProcMount            = "procMount"
	RuleKernelPatches        = "kernelPatches"
	RuleKernelCVEs           = "kernelCVEs"
	RuleKernelVersion        = "kernelVersion"
	RuleKernelUpdatesPending = "kernelUpdatesPending"
	RuleKernelStateUnknown   = "kernelStateUnknown"
)

// containerRule judges one container. check is pure: it reads only the
// compiled policy and the workload, and returns the detail of a violation.
type containerRule struct {
	id     string
	reason string
	// needs is the workload input the rule reads; unseen input defers it.
	needs Field
	check func(c *compiled, w *Workload) (detail string, violated bool)
	// partial, when set, judges what is known of the input while needs is
	// unseen: a violation it proves is reported, and the rule is deferred
	// only when deferred is true (what is unknown matters to it).
	partial func(c *compiled, w *Workload) (detail string, violated, deferred bool)
	// fix says what to change where the container came from, in that
	// tool's words (a pod's securityContext field, a podman flag); ""
	// when there is nothing to add to the OCI field the detail names.
	// Explain appends it to the detail; it never affects the decision.
	fix func(w *Workload, v *Violation, o origin) string
}

// kernelRule judges the host kernel's state. check is pure; state is never nil
// and has been judged known enough for the rule by kernelStateUnknown.
type kernelRule struct {
	id     string
	reason string
	// part is the KernelState.Unknown part the rule reads.
	part  string
	check func(k *KernelSpec, s *KernelState) (detail string, violated bool)
	// remedy says what makes the rule pass again, for Explain, which adds
	// how to get there (a live-patch update).
	remedy string
}

// containerRules is the registry of container rules. Its order is the bit
// order of exemption masks and the order of RulesSpec.all.
var containerRules = []containerRule{
	runAsRootRule,
	privilegedRule,
	capabilitiesRule,
	hostNamespacesRule,
	hostPathMountsRule,
	hostDevicesRule,
	privilegeEscalationRule,
	seccompRule,
	apparmorRule,
	sysctlsRule,
	procMountRule,
}

// kernelRules is the registry of kernel rules, except kernelStateUnknown which
// Evaluate applies first (rule_kernelStateUnknown.go).
var kernelRules = []kernelRule{
	kernelPatchesRule,
	kernelCVEsRule,
	kernelVersionRule,
	kernelUpdatesPendingRule,
}

// RuleIDs returns every rule ID, container rules first, in registry order.
func RuleIDs() []string {
	ids := make([]string, 0, len(containerRules)+len(kernelRules)+1)
	for _, r := range containerRules {
		ids = append(ids, r.id)
	}
	for _, r := range kernelRules {
		ids = append(ids, r.id)
	}
	return append(ids, RuleKernelStateUnknown)
}

// IsRuleID reports whether id names a rule.
func IsRuleID(id string) bool { return ruleBit(id) != 0 }

// ruleBit is the exemption-mask bit of a rule: container rules first, then
// kernel rules, then kernelStateUnknown.
func ruleBit(id string) uint32 {
	for i, r := range containerRules {
		if r.id == id {
			return 1 << i
		}
	}
	for i, r := range kernelRules {
		if r.id == id {
			return 1 << (len(containerRules) + i)
		}
	}
	if id == RuleKernelStateUnknown {
		return 1 << (len(containerRules) + len(kernelRules))
	}
	return 0
}

// ValidateRegistry checks the rule registry: IDs unique, well-formed and
// matching RulesSpec, reasons set, inputs declared. patchgate calls it at start
// and a test asserts it passes.
func ValidateRegistry() error {
	seen := map[string]bool{}
	var errs []string
	check := func(id, reason string) {
		if id == "" || strings.ContainsAny(id, " .") {
			errs = append(errs, fmt.Sprintf("malformed rule ID %q", id))
		}
		if seen[id] {
			errs = append(errs, fmt.Sprintf("duplicate rule ID %q", id))
		}
		seen[id] = true
		if reason == "" || strings.TrimSpace(reason) != reason {
			errs = append(errs, fmt.Sprintf("rule %q: bad reason %q", id, reason))
		}
	}
	var rs RulesSpec
	specs := rs.all()
	if len(specs) != len(containerRules) {
		errs = append(errs, fmt.Sprintf("RulesSpec has %d rules, registry %d", len(specs), len(containerRules)))
	}
	for i, r := range containerRules {
		check(r.id, r.reason)
		if r.needs == 0 || !FieldsAll.Has(r.needs) {
			errs = append(errs, fmt.Sprintf("rule %q: bad input fields %b", r.id, r.needs))
		}
		if r.check == nil {
			errs = append(errs, fmt.Sprintf("rule %q: no check", r.id))
		}
		if r.fix == nil {
			errs = append(errs, fmt.Sprintf("rule %q: no fix for messages", r.id))
		}
		if i < len(specs) && rulesSpecKey(i) != r.id {
			errs = append(errs, fmt.Sprintf("rule %q is configured under rules.%s", r.id, rulesSpecKey(i)))
		}
	}
	for _, r := range kernelRules {
		check(r.id, r.reason)
		if r.check == nil {
			errs = append(errs, fmt.Sprintf("rule %q: no check", r.id))
		}
		if r.remedy == "" {
			errs = append(errs, fmt.Sprintf("rule %q: no remedy for messages", r.id))
		}
		switch r.part {
		case "patches", "cves", "version", "updates":
		default:
			errs = append(errs, fmt.Sprintf("rule %q: bad state part %q", r.id, r.part))
		}
	}
	check(RuleKernelStateUnknown, kernelStateUnknownReason)
	if n := len(seen); n > 32 {
		errs = append(errs, fmt.Sprintf("%d rules do not fit the 32-bit exemption mask", n))
	}
	if len(errs) > 0 {
		return fmt.Errorf("rule registry: %s", strings.Join(errs, "; "))
	}
	return nil
}

// rulesSpecKey is the YAML key of RulesSpec field i.
func rulesSpecKey(i int) string {
	fields := schemaFields(rulesSpecType)
	if i < len(fields) {
		return fields[i].name
	}
	return ""
}

// ruleAction is the compiled action of one container rule.
type ruleAction struct {
	normal, behind Action
}

func (a ruleAction) at(behind bool) Action {
	if behind {
		return a.behind
	}
	return a.normal
}

var rulesSpecType = reflect.TypeOf(RulesSpec{})

// The registry is fixed at compile time; a broken one is a programming error
// that must stop patchgate at start, before any container is judged.
func init() {
	if err := ValidateRegistry(); err != nil {
		panic("patchgate: " + err.Error())
	}
}
