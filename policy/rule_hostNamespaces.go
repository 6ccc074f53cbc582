package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule hostNamespaces
//
// Why: a container in the host's pid namespace can see and signal every
// process on the node; in the host's network namespace it can bind host ports
// and reach node-local services; host ipc exposes other processes' shared
// memory; host uts lets it change the node's hostname.
//
// Reads: Workload.HostNamespaces, which the front end works out: a namespace
// missing from the sandbox's spec (containerd CRI: containers join the
// sandbox's namespaces by path), missing from the container's own spec, or a
// namespace path whose inode is the host's (<hostRoot>/proc/1/ns/<type>).
// Workload.UnknownNamespaces are the types it could not tell (no resolver,
// or the path cannot be stat'ed): the rule then still reports every proven
// host namespace, and is deferred only when an unknown type is one the
// policy forbids.
//
// Allowed: none of rules.hostNamespaces.namespaces (default pid, ipc,
// network, uts) is the host's, and the container has a mount namespace of
// its own: "mount" is always forbidden, shared with the host or joined by
// path (another container's), because runc builds the container's root and
// pivots into it inside that namespace.
//
// Parameters: namespaces.
var hostNamespacesRule = containerRule{
	id:      RuleHostNamespaces,
	reason:  "host namespaces",
	needs:   FieldHostNamespaces,
	check:   checkHostNamespaces,
	partial: partialHostNamespaces,
	fix:     fixHostNamespaces,
}

// partialHostNamespaces judges the known namespaces when some are unknown.
func partialHostNamespaces(c *compiled, w *Workload) (string, bool, bool) {
	detail, violated := checkHostNamespaces(c, w)
	// Unseen with no unknown type named: nobody looked at all.
	deferred := len(w.UnknownNamespaces) == 0
	for _, ns := range w.UnknownNamespaces {
		if slices.Contains(c.hostNS, ns) && !slices.Contains(w.HostNamespaces, ns) {
			deferred = true
		}
	}
	return detail, violated, deferred
}

func checkHostNamespaces(c *compiled, w *Workload) (string, bool) {
	var bad []string
	for _, ns := range w.HostNamespaces {
		if slices.Contains(c.hostNS, ns) && !slices.Contains(bad, ns) {
			bad = append(bad, ns)
		}
	}
	joined := w.MountNamespacePath != "" && !slices.Contains(bad, "mount")
	if len(bad) == 0 && !joined {
		return "", false
	}
	slices.Sort(bad)
	var parts []string
	if len(bad) > 0 {
		parts = append(parts, fmt.Sprintf("share the host's %s %s", quoteList(bad), plural(len(bad), "namespace", "namespaces")))
	}
	if joined {
		parts = append(parts, fmt.Sprintf("join the mount namespace %q", w.MountNamespacePath))
	}
	return fmt.Sprintf("%s must not %s (linux.namespaces)", subject(w), strings.Join(parts, " or ")), true
}

// fixHostNamespaces names the pod field or podman flag of each host
// namespace: hostPID, hostIPC and hostNetwork (which also shares the
// host's uts namespace); --pid, --ipc, --network, --uts, --cgroupns and
// --userns=host, for the namespaces the detail names (the policy may allow
// others). A mount namespace joined by path has neither.
func fixHostNamespaces(w *Workload, v *Violation, o origin) string {
	var kube, pm []string
	for _, ns := range w.HostNamespaces {
		if !strings.Contains(v.Detail, strconv.Quote(ns)) {
			continue // shared with the host, and allowed
		}
		switch ns {
		case "pid":
			kube, pm = append(kube, "spec.hostPID=true"), append(pm, "--pid=host")
		case "ipc":
			kube, pm = append(kube, "spec.hostIPC=true"), append(pm, "--ipc=host")
		case "network":
			kube, pm = append(kube, "spec.hostNetwork=true"), append(pm, "--network=host")
		case "uts":
			kube, pm = append(kube, "spec.hostNetwork=true"), append(pm, "--uts=host")
		case "cgroup":
			pm = append(pm, "--cgroupns=host")
		case "user":
			kube, pm = append(kube, "spec.hostUsers=true"), append(pm, "--userns=host")
		}
	}
	slices.Sort(kube)
	kube = slices.Compact(kube)
	slices.Sort(pm)
	var k, p string
	if len(kube) > 0 {
		k = "must not set " + strings.Join(kube, ", ")
	}
	if len(pm) > 0 {
		p = "run without " + strings.Join(pm, ", ")
	}
	return fixFor(o, k, p)
}
