package policy

import (
	"fmt"
	"strings"
)

// fieldNames names every Field: the NRI plugin passes the fields it has
// judged to the OCI hook it injects (`patchgate hook --nri-judged LIST`).
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
