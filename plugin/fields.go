package plugin

import (
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// fieldNames names every policy.Field for the hook's --nri-judged flag.
var fieldNames = []struct {
	f    policy.Field
	name string
}{
	{policy.FieldUser, "user"},
	{policy.FieldCapabilities, "capabilities"},
	{policy.FieldPrivileged, "privileged"},
	{policy.FieldNoNewPrivileges, "noNewPrivileges"},
	{policy.FieldHostNamespaces, "hostNamespaces"},
	{policy.FieldMounts, "mounts"},
	{policy.FieldDevices, "devices"},
	{policy.FieldSeccomp, "seccomp"},
	{policy.FieldAppArmor, "apparmor"},
	{policy.FieldSysctls, "sysctls"},
	{policy.FieldProcMount, "procMount"},
}

// FieldNames lists the names of the fields in f, in a fixed order.
func FieldNames(f policy.Field) []string {
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
func ParseFieldNames(s string) (policy.Field, error) {
	var f policy.Field
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
