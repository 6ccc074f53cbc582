package policy

import (
	"fmt"
	"strings"
)

// Rule runAsRoot
//
// Why: a process that is uid 0 on the host owns every root-owned file it can
// reach and is one kernel bug away from the whole node. On a shared kernel
// that risk depends on the kernel's patch level, which is why this rule is
// the usual place for whenKernelBehind: tolerate root on a patched kernel,
// block it while a required patch is missing.
//
// Reads: process.user.uid, linux.uidMappings, linux.gidMappings (the sandbox
// spec's when the container has none), the user namespace in
// linux.namespaces (Workload.User).
//
// Root on the host: without a user namespace, process.user.uid 0 (as Pod
// Security's runAsNonRoot and runAsUser). In a user namespace, the process's
// uid mapped to host uid 0, or any uid or gid mapping that reaches host uid
// or gid 0: a container can switch to any uid or gid its namespace maps (a
// setuid file owned by that uid, setuid(2) as the namespace's root), and
// files it writes as that id are the host root's. A mapping whose range runs
// past 2^32-1 is treated as reaching 0 (the kernel refuses it; patchgate does
// not bet on that). A user namespace joined by path keeps its own mappings,
// so the spec's are not believed there: FromSpec takes them from a sandbox
// spec that created the namespace (containerd CRI), and treats the host's own
// user namespace (found by HostNamespace) as none. A user namespace whose uid
// or gid mappings are not visible is judged as root, and so is a process uid
// its mappings do not map.
//
// Allowed: a uid other than 0 without a user namespace; in a user namespace,
// mappings that all land on non-zero host ids and map the process's uid.
//
// Parameters: none.
var runAsRootRule = containerRule{
	id:     RuleRunAsRoot,
	reason: "run as root",
	needs:  FieldUser,
	check:  checkRunAsRoot,
	fix:    fixRunAsRoot,
}

// hostID maps a container id to the host through a user namespace's
// mappings; ok is false when the id is not mapped.
func hostID(maps []IDMapping, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

// mapsHostZero returns the container id of the first mapping that reaches
// host id 0 (or wraps past 2^32-1), and whether there is one.
func mapsHostZero(maps []IDMapping) (uint32, bool) {
	for _, m := range maps {
		if m.Size == 0 {
			continue
		}
		if m.HostID == 0 {
			return m.ContainerID, true
		}
		if end := uint64(m.HostID) + uint64(m.Size); end > 1<<32 {
			return m.ContainerID + uint32(1<<32-uint64(m.HostID)), true
		}
	}
	return 0, false
}

func checkRunAsRoot(_ *compiled, w *Workload) (string, bool) {
	u := &w.User
	if !u.UserNamespace {
		if u.UID != 0 {
			return "", false
		}
		return fmt.Sprintf("%s must not run as uid 0 (process.user.uid)", subject(w)), true
	}
	if len(u.UIDMappings) == 0 || len(u.GIDMappings) == 0 {
		var missing []string
		if len(u.UIDMappings) == 0 {
			missing = append(missing, "linux.uidMappings")
		}
		if len(u.GIDMappings) == 0 {
			missing = append(missing, "linux.gidMappings")
		}
		return fmt.Sprintf("%s runs as uid %d in a user namespace whose mappings are not visible (%s): judged as root",
			subject(w), u.UID, strings.Join(missing, ", ")), true
	}
	host, ok := hostID(u.UIDMappings, u.UID)
	switch {
	case !ok:
		return fmt.Sprintf("%s runs as uid %d in a user namespace whose uid mappings do not map it (linux.uidMappings)", subject(w), u.UID), true
	case host == 0:
		return fmt.Sprintf("%s must not run as uid %d mapped to host uid 0 (process.user.uid, linux.uidMappings)", subject(w), u.UID), true
	}
	var bad []string
	if id, zero := mapsHostZero(u.UIDMappings); zero {
		bad = append(bad, fmt.Sprintf("container uid %d to host uid 0 (linux.uidMappings)", id))
	}
	if id, zero := mapsHostZero(u.GIDMappings); zero {
		bad = append(bad, fmt.Sprintf("container gid %d to host gid 0 (linux.gidMappings)", id))
	}
	if len(bad) == 0 {
		return "", false
	}
	return fmt.Sprintf("%s must not map %s", subject(w), strings.Join(bad, " or ")), true
}

// fixRunAsRoot: a pod sets a non-root user (Pod Security: runAsNonRoot !=
// true, runAsUser=0); in a user namespace the mappings come from
// spec.hostUsers=false, which never maps to host root. podman: --user, and
// --userns/--uidmap for the mappings.
func fixRunAsRoot(w *Workload, _ *Violation, o origin) string {
	if w.User.UserNamespace {
		return fixFor(o, "set spec.hostUsers=false (the kubelet maps the pod to unprivileged host ids) or a non-zero securityContext.runAsUser",
			"use --userns or --uidmap that map no id to host root, or --user with a non-zero uid")
	}
	return fixFor(o, "must set securityContext.runAsNonRoot=true and securityContext.runAsUser to a non-zero uid",
		"run with --user set to a non-zero uid")
}
