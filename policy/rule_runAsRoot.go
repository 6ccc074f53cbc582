package policy

import "fmt"

// Rule runAsRoot
//
// Why: a process that is uid 0 on the host owns every root-owned file it can
// reach and is one kernel bug away from the whole node. On a shared kernel
// that risk depends on the kernel's patch level, which is why this rule is
// the usual place for whenKernelBehind: tolerate root on a patched kernel,
// block it while a required patch is missing.
//
// Reads: process.user.uid, linux.uidMappings, the user namespace in
// linux.namespaces (Workload.User).
//
// Allowed: a uid other than 0; uid 0 inside a user namespace whose uid
// mappings map it to a non-zero host uid. A user namespace whose mappings are
// not visible is judged as root (the safe side).
//
// Parameters: none.
var runAsRootRule = containerRule{
	id:     RuleRunAsRoot,
	reason: "run as root",
	needs:  FieldUser,
	check:  checkRunAsRoot,
}

// hostUID maps a container uid to the host through the user namespace's
// mappings; ok is false when the uid is not mapped or no mappings are known.
func hostUID(u *User, uid uint32) (uint32, bool) {
	for _, m := range u.UIDMappings {
		if uid >= m.ContainerID && uint64(uid) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (uid - m.ContainerID), true
		}
	}
	return 0, false
}

func checkRunAsRoot(_ *compiled, w *Workload) (string, bool) {
	u := &w.User
	if u.UID != 0 {
		return "", false
	}
	if !u.UserNamespace {
		return fmt.Sprintf("%s must not run as uid 0 (process.user.uid)", subject(w)), true
	}
	host, ok := hostUID(u, 0)
	if !ok {
		return fmt.Sprintf("%s runs as uid 0 in a user namespace whose uid mappings do not map it (linux.uidMappings)", subject(w)), true
	}
	if host == 0 {
		return fmt.Sprintf("%s must not run as uid 0 mapped to host uid 0 (process.user.uid, linux.uidMappings)", subject(w)), true
	}
	return "", false
}
