package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Rule hostPathMounts
//
// Why: a bind mount of a sensitive host path hands the container the node:
// /etc (users, sudoers, cron), /proc and /sys (kernel knobs), /dev, /boot,
// /root, the container runtime's socket or state (start any container), the
// kubelet's directory (every pod's secrets).
//
// Reads: mounts (destination, source, type, options) (Workload.Mounts).
//
// Allowed: mounts that are not bind mounts; bind mounts whose source neither
// is, lies under, nor contains a path in rules.hostPathMounts.denied ("/"
// denies a mount of the root itself, which contains every other path); with
// allowReadOnly, read-only ones; the runtime's own bind mounts (/etc/hosts,
// /etc/hostname, /etc/resolv.conf, /dev/shm with a source under one of
// runtimeDirs); the pod's own kubelet volumes (source under
// <kubeletDir>/pods/<pod uid>/). /var/run and /run are the same directory.
//
// Parameters: denied, allowReadOnly, runtimeDirs, kubeletDir.
var hostPathMountsRule = containerRule{
	id:     RuleHostPathMounts,
	reason: "host path mounts",
	needs:  FieldMounts,
	check:  checkHostPathMounts,
}

// runtimeManagedDest are the mount destinations runtimes fill from their own
// state directories.
var runtimeManagedDest = [...]string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm"}

func isBind(m *Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// underDir reports whether p is dir or inside it (both clean).
func underDir(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

// canonRun maps /var/run/... to /run/...: on every current distro /var/run is
// a symlink to /run.
func canonRun(p string) string {
	if underDir(p, "/var/run") {
		return "/run" + p[len("/var/run"):]
	}
	return p
}

func (c *compiled) runtimeManaged(dst, src string, w *Workload) bool {
	if isRuntimeManagedDest(dst) {
		for _, d := range c.runtimeDirs {
			if len(src) > len(d) && underDir(src, d) {
				return true
			}
		}
	}
	// <kubeletDir>/pods/<pod uid>/...
	if c.kubeletPods != "" && w.Pod.UID != "" && strings.HasPrefix(src, c.kubeletPods) {
		rest := src[len(c.kubeletPods):]
		uid := w.Pod.UID
		if len(rest) > len(uid)+1 && rest[:len(uid)] == uid && rest[len(uid)] == '/' && !strings.Contains(uid, "/") {
			return true
		}
	}
	return false
}

func isRuntimeManagedDest(dst string) bool {
	for _, d := range runtimeManagedDest {
		if dst == d {
			return true
		}
	}
	return false
}

// cleanPath is path.Clean without the work for the paths runtimes write,
// which are already clean: absolute, no empty, "." or ".." element, no
// trailing slash.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' || (len(p) > 1 && p[len(p)-1] == '/') {
		return path.Clean(p)
	}
	for i := 0; i+1 < len(p); {
		// p[i] is a slash; look at the element after it.
		rest := p[i+1:]
		j := strings.IndexByte(rest, '/')
		elem := rest
		if j >= 0 {
			elem = rest[:j]
		}
		if elem == "" || elem == "." || elem == ".." {
			return path.Clean(p)
		}
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return p
}

func checkHostPathMounts(c *compiled, w *Workload) (string, bool) {
	var bad []string
	for i := range w.Mounts {
		m := &w.Mounts[i]
		if !isBind(m) || m.Source == "" {
			continue
		}
		src := canonRun(cleanPath(m.Source))
		if c.allowReadOnly && hasOption(m.Options, "ro") {
			continue
		}
		if !path.IsAbs(src) {
			// A relative source is relative to the bundle directory (OCI
			// runtime-spec, config.md "mounts"). FromSpec resolves it when
			// the bundle is known; here it is not, so one that climbs out
			// of the bundle could be any host path: the strict side.
			if src == ".." || strings.HasPrefix(src, "../") {
				bad = append(bad, fmt.Sprintf("%s (from %s: relative to an unknown bundle directory and leaves it)", m.Destination, m.Source))
			}
			continue
		}
		// Only a short destination can clean to one of the four the
		// runtime manages; a long unclean one is judged as written (the
		// strict side).
		dst := m.Destination
		if !isRuntimeManagedDest(dst) && len(dst) <= 32 {
			dst = cleanPath(dst)
		}
		if c.runtimeManaged(dst, src, w) {
			continue
		}
		for _, d := range c.denied {
			// The source is the denied path, lies inside it, or contains it
			// (and so exposes it). "/" denies only a mount of the root
			// itself, not everything.
			if src == d || (d != "/" && underDir(src, d)) || underDir(d, src) {
				bad = append(bad, fmt.Sprintf("%s (from %s)", m.Destination, m.Source))
				break
			}
		}
	}
	if len(bad) == 0 {
		return "", false
	}
	slices.Sort(bad)
	return fmt.Sprintf("%s must not bind-mount denied host %s: %s (mounts)",
		subject(w), plural(len(bad), "path", "paths"), strings.Join(bad, ", ")), true
}
