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
