package policy

import (
	"fmt"
	"strings"
)

// fieldNames names every Field, for logs and for the (ignored, still
// checked) `patchgate hook --nri-judged LIST` of hooks older plugins injected.
var fieldNames = []struct {
	f    Field
	name string
}{
	{FieldUser, "user"},
	{FieldCapabilities, "capabilities"},
	{FieldPrivileged, "privileged"},
	{FieldNoNewPrivileges, "noNewPrivileges"},
	{FieldHostNamespaces, "hostNamespaces"},
	{FieldMounts, "mounts"},
	{FieldDevices, "devices"},
	{FieldSeccomp, "seccomp"},
	{FieldAppArmor, "apparmor"},
	{FieldSysctls, "sysctls"},
	{FieldProcMount, "procMount"},
}

// FieldNames lists the names of the fields in f, in a fixed order.
func FieldNames(f Field) []string {
	var out []string
	for _, n := range fieldNames {
		if f.Has(n.f) {
			out = append(out, n.name)
		}
	}
	return out
}

// ParseFieldNames is the inverse of FieldNames: a comma-separated list.
// An unknown name is an error.
func ParseFieldNames(s string) (Field, error) {
	var f Field
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, n := range fieldNames {
			if n.name == part {
				f |= n.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown field %q", part)
		}
	}
	return f, nil
}

// AfterNRI trims a decision made by the OCI hook that the NRI plugin
// injected: NRI has judged the kernel rules (at create time, moments
// earlier) and written the record for them, so the hook keeps only the
// violations of the rules NRI could not see and recomputes the verdict. It
// reports whether anything is left worth a record of its own.
func AfterNRI(d *Decision) (record bool) {
	kept := d.Violations[:0:0]
	for _, v := range d.Violations {
		switch v.Rule {
		case RuleKernelPatches, RuleKernelCVEs, RuleKernelVersion, RuleKernelUpdatesPending, RuleKernelStateUnknown:
			continue
		}
		kept = append(kept, v)
	}
	d.Violations = kept
	d.Verdict = verdictOf(kept)
	return len(kept) > 0
}

// RuleUnjudged is the rule ID of the violation MarkUnjudged adds.
const RuleUnjudged = "unjudged"

// Unjudged lists the deferred rules of d that nobody judged: those whose
// input fields are not all among judged (the fields the NRI plugin that
// injected the hook saw and judged). The rest were judged by NRI.
func Unjudged(d *Decision, judged Field) []string {
	var out []string
	for _, id := range d.Deferred {
		needs := FieldsAll
		for i := range containerRules {
			if containerRules[i].id == id {
				needs = containerRules[i].needs
			}
		}
		if !judged.Has(needs) {
			out = append(out, id)
		}
	}
	return out
}

// LeftToJudge is what the last judge (the node service answering the
// hook) must still see of a container whose fields judged the NRI
// validator judged: seen without judged, except that every field of a rule
// NRI judged only in part stays: the hook judges such a rule (privileged
// reads two fields) again in full rather than leave it to nobody.
func LeftToJudge(seen, judged Field) Field {
	left := seen &^ judged
	for i := range containerRules {
		needs := containerRules[i].needs
		if needs&judged != 0 && !judged.Has(needs) {
			left |= needs & seen
		}
	}
	return left
}

// MarkUnjudged is for the last judge (the OCI hook, and the node service
// answering it): a rule still deferred there was judged by nobody, so it
// is never a pass. Under spec.hook.onError deny (also "") it adds an
// enforce violation RuleUnjudged naming the rules, under allow a warn one,
// and recomputes the verdict. It returns the unjudged rule IDs; a decision
// that already carries RuleUnjudged is left as it is.
func MarkUnjudged(d *Decision, judged Field, onError string) []string {
	ids := Unjudged(d, judged)
	if len(ids) == 0 {
		return nil
	}
	for _, v := range d.Violations {
		if v.Rule == RuleUnjudged {
			return ids
		}
	}
	action, mode := ActionEnforce, OnErrorDeny
	if onError == OnErrorAllow {
		action, mode = ActionWarn, OnErrorAllow
	}
	d.Violations = append(d.Violations, Violation{
		Rule: RuleUnjudged, Action: action, Reason: "input not visible",
		Detail: fmt.Sprintf("cannot judge %s %s: input not visible to the hook or NRI; spec.hook.onError is %s",
			plural(len(ids), "rule", "rules"), strings.Join(ids, ", "), mode),
	})
	d.Verdict = verdictOf(d.Violations)
	return ids
}
