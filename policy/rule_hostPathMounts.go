package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Rule hostPathMounts
//
// Why: a mount of a host path hands the container part of the node: /etc
// (users, sudoers, cron), /usr and /lib/modules (code the host runs), the
// container runtime's socket or state (start any container), patchgate's own
// sockets and policy (replace the decision), the kubelet's directory (every
// pod's secrets). Pod Security baseline forbids every hostPath volume. A
// filesystem mounted afresh can do the same: sysfs and cgroupfs are the
// host's kernel objects (sysfs is not namespaced, and a writable cgroup v1
// hierarchy runs a release_agent as host root), an overlay writes its
// upperdir on the host, and a disk filesystem (ext4 of /dev/sda1) is the
// host's disk.
//
// Reads: mounts (destination, type, source and options; the source after
// symlink resolution when the front end could resolve it, and the host
// paths that show the same content when it is a mount point, Origins)
// (Workload.Mounts).
//
// Allowed:
//   - bind mounts ("bind"/"rbind" in options, or type bind/rbind) whose
//     source is the runtime's own file for /etc/hosts, /etc/hostname,
//     /etc/resolv.conf, /dev/shm or /run/.containerenv (that file name,
//     inside one of runtimeDirs), or lies under the pod's own kubelet
//     directory <kubeletDir>/pods/<pod uid>/ (its volumes, /etc/hosts,
//     /dev/termination-log), except its volume-subpaths/: kubelet binds a
//     volume's <path>/<subPath> there, so such a source is admitted only
//     when one of its Origins is in the pod's directory outside
//     volume-subpaths/ (a subPath of an emptyDir, configMap, secret or PVC
//     volume), else judged as the first origin (hostPath / with subPath
//     etc is /etc); without origins it cannot be judged. Every other
//     source in the pod's directory is judged by the host mount that backs
//     it (Mount.Backing, judgePodVolume): kubelet mounts inline volumes
//     there (iSCSI, FC, RBD disks, NFS, CephFS, flexvolume) with the
//     server, portal and fsType the pod's author picks, and the host kernel
//     parses that filesystem. The pod's own are: a directory of the
//     filesystem the pod directory is on (plain emptyDir), a whole tmpfs or
//     ramfs mounted only there (emptyDir medium Memory, configMap, secret,
//     projected, downward API), a bind of the kubelet filesystem rooted in
//     the pod directory, and any mount under a plugin directory in
//     kubeletVolumePlugins. Those plugins are trusted because what backs
//     them is the pod's memory or directory (empty-dir, configmap, secret,
//     projected, downward-api) or storage the cluster admin provisioned
//     (csi, local-volume: a StatefulSet's PVC is a disk filesystem, and
//     refusing it would make the gate unusable), not a server or device
//     the pod's author names. Anything else is a filesystem mounted only in
//     the pod's directory (refused) or the host path that shows it (judged
//     as that path); one that cannot be traced is refused;
//   - a CRI image volume (KEP-4639, allowed by Pod Security): a bind of
//     <containerd state>/io.containerd.grpc.v1.cri/image-volumes/<sandbox
//     id>/<digest> exactly (the CRI state dir being the parent of a
//     runtimeDirs entry naming its sandboxes directory, or under an entry
//     naming the state dir), read-only (ro on a bind, rro on an rbind), and
//     showing no other host path (no Origins);
//   - other bind mounts only when the source is, or lies under, a path in
//     rules.hostPathMounts.allowed (with readOnly: only read-only mounts),
//     and is neither one of the protected paths below, nor inside one, nor
//     a parent of one (/, /run, /var contain them), nor denied the same way
//     by rules.hostPathMounts.denied. protectedHostPaths cannot be allowed.
//     Default: no host path at all, as Pod Security baseline;
//   - tmpfs, devpts and mqueue anywhere (memory and the container's own IPC
//     namespace, nothing of the host's);
//   - sysfs only at /sys and read-only, cgroup and cgroup2 only read-only
//     (a writable sysfs is also part of what the privileged rule reads);
//   - overlay when lowerdir (read) and upperdir, workdir (written) each pass
//     as a bind of that directory would, read-only and read-write;
//   - proc is judged by procMount; every other filesystem type (ext4, xfs,
//     nfs, fuse, 9p, ...) cannot be judged as harmless and is a violation.
//
// Read-only is what runc makes of the options (runc
// libcontainer/specconv/spec_linux.go parseMountOptions, mountFlags and
// recAttrFlags): "ro"/"rw" set and clear MS_RDONLY, the last one wins;
// "rro"/"rrw" do the same for the recursive MOUNT_ATTR_RDONLY; "rbind" adds
// MS_REC. MS_RDONLY on a recursive bind is applied to the top mount only and
// its submounts stay writable, so an rbind is read-only only with rro; a
// plain bind is read-only with ro or rro.
//
// Paths are compared clean, with /var/run spelled /run (on every current
// distro /var/run is a symlink to /run). A relative bind source is relative
// to the bundle (FromSpec joins it when the bundle is known); with the
// bundle unknown it cannot be judged and is a violation. A source the front
// end could not resolve (a symlink loop, an I/O error) is a violation.
//
// Parameters: allowed, denied, runtimeDirs, kubeletDir, kubeletVolumePlugins (allowReadOnly is
// deprecated: only false is accepted).
var hostPathMountsRule = containerRule{
	id:     RuleHostPathMounts,
	reason: "host path mounts",
	needs:  FieldMounts,
	check:  checkHostPathMounts,
	fix:    fixHostPathMounts,
}

// protectedHostPaths can never be mounted, whatever rules.hostPathMounts
// allows: whoever writes them controls patchgate, the runtime or the
// kubelet, and so every container on the node. A mount whose source is one
// of them, lies inside one, or contains one is refused. Paths use /run for
// /var/run.
//
// patchgate's own: run dir (decision and audit sockets, kernel state,
// status: cmd/patchgate serve/nri defaults), state, audit log
// (spec.audit.path default), policy (policy.DefaultDir), and binaries
// (examples/systemd, examples/daemonset, hooks.d JSON). NRI: socket dir
// /var/run/nri, plugin and config dirs /opt/nri, /etc/nri (containerd's
// defaults). Runtimes: containerd, CRI-O, containers/storage (podman,
// CRI-O), Docker, podman, runc and crun state, sockets and configuration
// (the hooks.d directories decide which hooks run), the kubelet (its
// credentials and static pods), CNI plugins and their configuration (run as
// root by the runtime), and systemd's and D-Bus's private sockets (start a
// unit as root).
var protectedHostPaths = [...]string{
	"/run/patchgate", "/var/lib/patchgate", "/var/log/patchgate", "/etc/patchgate", "/opt/patchgate",
	"/usr/local/bin/patchgate", "/usr/local/bin/patchgate-hook",
	"/run/nri", "/opt/nri", "/etc/nri",
	"/run/containerd", "/var/lib/containerd", "/etc/containerd",
	"/run/crio", "/var/lib/crio", "/etc/crio",
	"/run/containers", "/var/lib/containers", "/etc/containers", "/usr/share/containers/oci/hooks.d",
	"/run/docker", "/run/docker.sock", "/var/lib/docker", "/etc/docker",
	"/run/podman", "/run/libpod", "/run/runc", "/run/crun",
	"/var/lib/kubelet", "/etc/kubernetes",
	"/opt/cni", "/etc/cni", "/var/lib/cni",
	"/run/systemd", "/run/dbus",
}

// ProtectedHostPaths returns the paths no policy can allow a container to
// mount (for `policy show` and the docs).
func ProtectedHostPaths() []string { return slices.Clone(protectedHostPaths[:]) }

// runtimeFile names the file a runtime bind-mounts onto each destination it
// manages: containerd's CRI (<root|state>/io.containerd.grpc.v1.cri/
// sandboxes/<id>/{hosts,hostname,resolv.conf,shm}), CRI-O and podman
// (<runroot|graphroot>/<driver>-containers/<id>/userdata/{hosts,hostname,
// resolv.conf,shm,.containerenv}), as recorded in hook/testdata.
func runtimeFile(dst string) string {
	switch dst {
	case "/etc/hosts":
		return "hosts"
	case "/etc/hostname":
		return "hostname"
	case "/etc/resolv.conf":
		return "resolv.conf"
	case "/dev/shm":
		return "shm"
	case "/run/.containerenv", "/var/run/.containerenv":
		return ".containerenv"
	}
	return ""
}

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

// MountNeedsHost reports whether judging m needs a look at the host's file
// system (a bind source or an overlay directory, which a symlink on the
// host can redirect). A front end that cannot resolve paths, such as the
// NRI plugin, leaves such a mount to one that can (the hook).
func MountNeedsHost(m *Mount) bool {
	return isBind(m) || m.Type == "overlay"
}

// mountReadOnly reports whether runc makes the mount read-only (see the
// rule's header): rro, or ro on a mount that is not a recursive bind.
func mountReadOnly(m *Mount) bool {
	ro, rro, rec := false, false, m.Type == "rbind"
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rw":
			ro = false
		case "rro":
			rro = true
		case "rrw":
			rro = false
		case "rbind":
			rec = true
		}
	}
	return rro || (ro && !rec)
}

// onlyTopReadOnly reports an rbind made read-only with ro alone.
func onlyTopReadOnly(m *Mount) bool {
	ro := false
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rw":
			ro = false
		}
	}
	return ro && !mountReadOnly(m)
}

// underDir reports whether p is dir or inside it (both clean).
func underDir(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/')
}

// canonRun maps /var/run/... to /run/...: on every current distro /var/run is
// a symlink to /run.
func canonRun(p string) string {
	if underDir(p, "/var/run") {
		return "/run" + p[len("/var/run"):]
	}
	return p
}

// runtimeManaged reports whether the bind of src onto dst is the runtime's
// own (see the rule's header). src and dst are clean.
func (c *compiled) runtimeManaged(dst, src string, w *Workload) bool {
	if f := runtimeFile(dst); f != "" && path.Base(src) == f {
		for _, d := range c.runtimeDirs {
			if len(src) > len(d)+len(f)+2 && underDir(src, d) {
				if dir := src[len(d)+1 : len(src)-len(f)-1]; runtimeLayout(dir) && ownSandbox(dir, w.Pod.SandboxID) {
					return true
				}
			}
		}
	}
	// <kubeletDir>/pods/<pod uid>/...
	if c.kubeletPods != "" && w.Pod.UID != "" && strings.HasPrefix(src, c.kubeletPods) {
		rest := src[len(c.kubeletPods):]
		uid := w.Pod.UID
		if len(rest) > len(uid)+1 && rest[:len(uid)] == uid && rest[len(uid)] == '/' && !strings.Contains(uid, "/") && uid != "." && uid != ".." {
			return true
		}
	}
	return false
}

// criImageVolume reports whether src (clean) is a CRI image volume
// (KEP-4639) that containerd's CRI mounted: <CRI state dir>/image-volumes/
// <sandbox id>/<image manifest digest, hex> (containerd
// internal/cri/server/helpers.go getImageVolumeHostPath, v2.4.2), with the
// CRI state dir <containerd state>/io.containerd.grpc.v1.cri the parent of
// a runtimeDirs entry naming its sandboxes directory, or below an entry
// naming containerd's state. The caller admits it only read-only and when
// it shows no other host path (the image's own snapshot mount, or a
// directory containerd made). When the sandbox is known, the volume must be
// its own: another pod's image volume is that pod's image, pulled with its
// credentials.
func (c *compiled) criImageVolume(src, sandboxID string) bool {
	const cri, sandboxes, vols = "/io.containerd.grpc.v1.cri", "/sandboxes", "/image-volumes/"
	for _, d := range c.runtimeDirs {
		base := strings.TrimSuffix(d, sandboxes)
		if base == d {
			if !strings.HasPrefix(src, d) {
				continue
			}
			rest, ok := strings.CutPrefix(src[len(d):], cri+vols)
			if ok && imageVolumeLayout(rest, sandboxID) {
				return true
			}
			continue
		}
		if !strings.HasSuffix(base, cri) || !strings.HasPrefix(src, base) {
			continue
		}
		rest, ok := strings.CutPrefix(src[len(base):], vols)
		if ok && imageVolumeLayout(rest, sandboxID) {
			return true
		}
	}
	return false
}

// imageVolumeLayout reports whether rest is "<sandbox id>/<digest>": one
// path element, then 64 or 128 lowercase hex digits (a sha256 or sha512
// digest, encoded), with the sandbox id sandboxID unless that is empty.
func imageVolumeLayout(rest, sandboxID string) bool {
	id, dig, ok := strings.Cut(rest, "/")
	if !ok || id == "" || id == "." || id == ".." || (sandboxID != "" && id != sandboxID) || (len(dig) != 64 && len(dig) != 128) {
		return false
	}
	for i := 0; i < len(dig); i++ {
		if b := dig[i]; !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return false
		}
	}
	return true
}

// ownSandbox reports whether dir, a containerd layout that runtimeLayout
// accepts ("<id>" or "io.containerd.grpc.v1.cri/sandboxes/<id>"), names the
// container's own sandbox when the front end knows it: a pod's author can
// name another sandbox's directory in a hostPath volume, and mount that
// pod's /dev/shm or resolv.conf. containers/storage's layout (".../userdata")
// is not judged here: podman keeps these files in the container's own
// directory or its pod's infra container's.
func ownSandbox(dir, sandboxID string) bool {
	if sandboxID == "" || strings.HasSuffix(dir, "/userdata") {
		return true
	}
	return path.Base(dir) == sandboxID
}

// runtimeLayout reports whether dir, the directories between a runtime
// directory and the runtime's file, is one of the layouts the runtimes
// write: "<id>" (containerd's CRI: <root or state>/io.containerd.grpc.v1.cri/
// sandboxes/<id>/hosts, with runtimeDirs naming the sandboxes directory, or
// "io.containerd.grpc.v1.cri/sandboxes/<id>" with runtimeDirs naming the
// root or state) or "[...]/<driver>-containers/<id>/userdata"
// (containers/storage: podman and CRI-O). An image layer's etc/hosts below the same storage
// (overlay/<layer>/diff/etc/hosts) is neither.
func runtimeLayout(dir string) bool {
	if !strings.Contains(dir, "/") {
		return dir != "" && dir != "." && dir != ".."
	}
	if id, ok := strings.CutPrefix(dir, "io.containerd.grpc.v1.cri/sandboxes/"); ok {
		// A runtimeDirs entry naming containerd's root or state.
		return runtimeLayout(id) && !strings.Contains(id, "/")
	}
	rest, ok := strings.CutSuffix(dir, "/userdata")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || i == len(rest)-1 {
		return false
	}
	driver := rest[:i]
	if j := strings.LastIndexByte(driver, '/'); j >= 0 {
		driver = driver[j+1:]
	}
	return strings.HasSuffix(driver, "-containers") && len(driver) > len("-containers")
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

// hostPathVerdict judges one host path (clean, absolute, /run form) that a
// mount exposes, read-only or not. It returns "" when the path is allowed,
// else why not.
func (c *compiled) hostPathVerdict(src string, readOnly bool) string {
	for _, d := range protectedHostPaths {
		if underDir(src, d) {
			return "protected"
		}
		if underDir(d, src) {
			return "contains protected " + d
		}
	}
	for _, d := range c.denied {
		// "/" in denied denies a mount of the root itself only (it would
		// otherwise deny everything).
		if src == d || (d != "/" && underDir(src, d)) {
			return "denied"
		}
		if d != "/" && underDir(d, src) {
			return "contains denied " + d
		}
	}
	roOnly := false
	for i := range c.allowed {
		a := &c.allowed[i]
		if underDir(src, a.path) {
			if readOnly || !a.readOnly {
				return ""
			}
			roOnly = true
		}
	}
	if roOnly {
		return "allowed read-only only"
	}
	return "not allowed"
}

func checkHostPathMounts(c *compiled, w *Workload) (string, bool) {
	var bad []string
	for i := range w.Mounts {
		m := &w.Mounts[i]
		var why string
		if hasOption(m.Options, "remount") {
			// MS_REMOUNT changes the flags of what is already mounted at
			// the destination (runc passes it for any type and clears
			// MS_RDONLY): a "tmpfs" remount of /sys makes the runtime's
			// read-only sysfs, or a host cgroup tree, writable. No runtime
			// writes it for a container; it cannot be judged as the mount
			// it names.
			why = "option remount changes the mount already at " + m.Destination
		} else if isBind(m) {
			why = c.judgeBind(m, w)
		} else {
			why = c.judgeFilesystem(m)
		}
		if why != "" {
			bad = append(bad, m.Destination+" ("+why+")")
		}
	}
	if len(bad) == 0 {
		return "", false
	}
	slices.Sort(bad)
	return fmt.Sprintf("%s must not mount host %s: %s (mounts)",
		subject(w), plural(len(bad), "path", "paths"), strings.Join(bad, ", ")), true
}

// judgeBind returns "" for an allowed bind mount, else a description. It
// builds no string for an allowed mount (Evaluate's typical path does not
// allocate).
func (c *compiled) judgeBind(m *Mount, w *Workload) string {
	if m.ResolveError != "" {
		return "from " + m.Source + ": cannot resolve: " + m.ResolveError
	}
	src := m.Source
	if m.Resolved != "" {
		src = m.Resolved
	}
	if src == "" || src[0] != '/' {
		// A relative source is relative to the bundle directory (OCI
		// runtime-spec, config.md "mounts"). FromSpec resolves it when the
		// bundle is known; here it is not: it cannot be judged.
		return "from " + m.Source + ": relative to an unknown bundle directory"
	}
	src = canonRun(cleanPath(src))
	// Only a short destination can clean to one the runtime manages; a
	// long unclean one is judged as written (the strict side).
	dst := m.Destination
	if runtimeFile(dst) == "" && len(dst) <= 32 {
		dst = cleanPath(dst)
	}
	if c.runtimeManaged(dst, src, w) {
		if !c.podSubPath(src, w) {
			if !c.podPath(src, w) {
				return "" // the runtime's own file
			}
			if why := c.judgePodVolume(m, w, src); why != "" {
				return "from " + m.Source + ", " + why
			}
			return ""
		}
		// A subPath bind: judged by what it shows.
		if why := c.judgeSubPath(m, w); why != "" {
			return "from " + m.Source + ", " + why
		}
		return ""
	}
	ro := mountReadOnly(m)
	if ro && len(m.Origins) == 0 && c.criImageVolume(src, w.Pod.SandboxID) {
		return ""
	}
	v := c.hostPathVerdict(src, ro)
	if v == "" {
		return ""
	}
	from := "from " + m.Source
	if m.Resolved != "" && m.Resolved != m.Source {
		from += ", resolves to " + m.Resolved
	}
	return from + c.verdictText(v, m)
}

// verdictText phrases a hostPathVerdict for a mount's detail.
func (c *compiled) verdictText(v string, m *Mount) string {
	switch v {
	case "allowed read-only only":
		if onlyTopReadOnly(m) {
			return ", not read-only: rbind with ro leaves submounts writable, use rro"
		}
		return ", not read-only"
	case "not allowed":
		return ""
	}
	return ", " + v
}

// podSubPath reports whether src (clean, under the pod's own kubelet
// directory) lies in its volume-subpaths directory, where kubelet
// bind-mounts a volume's <path>/<subPath> (pkg/volume/util/subpath
// getSubpathBindTarget: <pod dir>/volume-subpaths/<volume>/<container>/<n>).
// Every other mount kubelet makes in the pod's directory is one of the
// pod's volumes (a tmpfs, a CSI or other volume plugin's mount); a hostPath
// volume is never mounted there, but its subPath is.
func (c *compiled) podSubPath(src string, w *Workload) bool {
	if c.kubeletPods == "" || w.Pod.UID == "" {
		return false
	}
	// src is <kubeletPods><uid>/... (runtimeManaged); no string is built.
	rest, ok := strings.CutPrefix(src, c.kubeletPods)
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, w.Pod.UID)
	return ok && strings.HasPrefix(rest, "/volume-subpaths/")
}

// podPath reports whether src (clean, runtimeManaged) lies under the pod's
// own kubelet directory.
func (c *compiled) podPath(src string, w *Workload) bool {
	return c.kubeletPods != "" && w.Pod.UID != "" && strings.HasPrefix(src, c.kubeletPods) &&
		strings.HasPrefix(src[len(c.kubeletPods):], w.Pod.UID)
}

// podVolumePlugin returns the plugin directory of a path below the pod's
// directory, rest being what follows <pod dir>: "/volumes/<plugin>/...";
// "" for any other part of the pod's directory.
func podVolumePlugin(rest string) string {
	rest, ok := strings.CutPrefix(rest, "/volumes/")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// trustedVolumePlugin reports whether plugin is in kubeletVolumePlugins.
func (c *compiled) trustedVolumePlugin(plugin string) bool {
	return plugin != "" && slices.Contains(c.kubeletPlugins, plugin)
}

// judgePodVolume judges a bind source src (clean) in the pod's own kubelet
// directory, outside volume-subpaths, by the host mount that backs it
// (Mount.Backing): a directory of the filesystem the pod's directory is on
// (a plain emptyDir, /etc/hosts, the termination log), a whole tmpfs or
// ramfs mounted only there (emptyDir medium Memory, configMap, secret,
// projected, downward API), a mount under a plugin directory in
// kubeletVolumePlugins, or a bind of part of the kubelet's filesystem whose
// root is in the pod's directory are the pod's own. Anything else is judged
// as what it is: a filesystem mounted only in the pod's directory (an iSCSI,
// FC or RBD disk, NFS, CephFS, a loop device) is a filesystem the host
// kernel parses and is refused; one seen elsewhere on the host is judged as
// the host path that shows it. Without Backing (no mount table) only the
// trusted plugins and the pod's other files are admitted.
func (c *compiled) judgePodVolume(m *Mount, w *Workload, src string) string {
	own := src[:len(c.kubeletPods)+len(w.Pod.UID)]
	plugin := podVolumePlugin(src[len(own):])
	b := m.Backing
	if b == nil {
		if plugin == "" || c.trustedVolumePlugin(plugin) {
			return ""
		}
		return "a " + plugin + " volume whose backing mount is not known (no mount table)"
	}
	if len(b.KubeletDir)+len("/pods/") != len(c.kubeletPods) || !strings.HasPrefix(c.kubeletPods, b.KubeletDir) {
		return "backing mount judged against kubelet directory " + b.KubeletDir
	}
	if !underDir(b.MountPoint, own) {
		if underDir(own, b.MountPoint) {
			return "" // a file or directory of the filesystem the pod's directory is on
		}
		return "backing mount " + b.MountPoint + " does not contain it"
	}
	if (b.FSType == "tmpfs" || b.FSType == "ramfs") && b.Root == "/" && len(b.Origins) == 0 {
		return "" // the pod's memory, mounted only here
	}
	if c.trustedVolumePlugin(plugin) {
		return ""
	}
	if b.KubeletFS && len(b.Origins) > 0 && b.OriginsTied <= 1 {
		if o := canonRun(cleanPath(b.Origins[0])); len(o) > len(own) && underDir(o, own) && !strings.HasPrefix(o[len(own):], "/volume-subpaths/") {
			return "" // a bind of part of the pod's own directory
		}
	}
	what := "a " + b.FSType + " filesystem"
	if b.Source != "" {
		what += " of " + b.Source
	}
	switch {
	case len(b.Origins) == 0 && plugin != "":
		return what + " mounted in the pod's directory at " + b.MountPoint + " (kubelet volume plugin " + plugin + "), not the pod's own"
	case len(b.Origins) == 0:
		return what + " mounted in the pod's directory at " + b.MountPoint + ", not the pod's own"
	case b.OriginsTied > 1:
		return what + " seen at more than one host path: " + strings.Join(b.Origins[:b.OriginsTied], ", ")
	}
	o := canonRun(cleanPath(b.Origins[0]))
	v := c.hostPathVerdict(o, mountReadOnly(m))
	if v == "" {
		return ""
	}
	return what + ", shows " + o + c.verdictText(v, m)
}

// judgeSubPath judges a subPath bind by the host paths that show the same
// content (Mount.Origins, from the host's mount table): admitted when one
// of them is in the pod's own directory outside volume-subpaths (a
// subdirectory or file of the pod's emptyDir, configMap, secret or PVC
// volume), else judged as that host path (hostPath / with subPath etc is
// /etc). A subPath bind whose origins the front end could not see (no mount
// table, or not a mount point at all) cannot be judged.
func (c *compiled) judgeSubPath(m *Mount, w *Workload) string {
	own := c.kubeletPods + w.Pod.UID
	subs := own + "/volume-subpaths"
	for _, o := range m.Origins {
		o = canonRun(cleanPath(o))
		if len(o) > len(own) && underDir(o, own) && !underDir(o, subs) {
			return c.judgeOwnSubPath(m, o[len(own):])
		}
	}
	switch {
	case len(m.Origins) == 0:
		return "a subPath mount whose origin is not known (no mount table)"
	case m.OriginsTied > 1:
		return "shows a filesystem seen at more than one host path: " + strings.Join(m.Origins[:m.OriginsTied], ", ")
	}
	o := canonRun(cleanPath(m.Origins[0]))
	v := c.hostPathVerdict(o, mountReadOnly(m))
	if v == "" {
		return ""
	}
	return "shows " + o + c.verdictText(v, m)
}

// judgeOwnSubPath judges a subPath whose origin is in the pod's own
// directory (rest: the origin after <pod dir>) by what backs it, as
// judgePodVolume does for the volume itself: a subPath of an iSCSI or NFS
// volume is that filesystem. The origin's plugin directory in
// kubeletVolumePlugins, a part of the pod directory that is no volume, and
// a tmpfs, ramfs or the kubelet directory's filesystem (Mount.Backing of
// the subPath mount) are the pod's own.
func (c *compiled) judgeOwnSubPath(m *Mount, rest string) string {
	plugin := podVolumePlugin(rest)
	if plugin == "" || c.trustedVolumePlugin(plugin) {
		return ""
	}
	b := m.Backing
	switch {
	case b == nil:
		return "a subPath of a " + plugin + " volume whose backing mount is not known (no mount table)"
	case b.FSType == "tmpfs" || b.FSType == "ramfs" || b.KubeletFS:
		return ""
	}
	what := "a " + b.FSType + " filesystem"
	if b.Source != "" {
		what += " of " + b.Source
	}
	return "a subPath of " + what + " (kubelet volume plugin " + plugin + "), not the pod's own"
}

// judgeFilesystem returns "" for an allowed non-bind mount, else a
// description.
func (c *compiled) judgeFilesystem(m *Mount) string {
	switch m.Type {
	case "tmpfs", "devpts", "mqueue":
		return ""
	case "proc":
		return "" // procMount
	case "sysfs":
		dst := cleanPath(m.Destination)
		switch {
		case dst != "/sys":
			return "sysfs outside /sys"
		case !mountReadOnly(m):
			return "sysfs, not read-only"
		}
		return ""
	case "cgroup", "cgroup2":
		if !mountReadOnly(m) {
			return m.Type + ", not read-only"
		}
		return ""
	case "overlay":
		return c.judgeOverlay(m)
	}
	src := ""
	if m.Source != "" {
		src = " from " + m.Source
	}
	return fmt.Sprintf("filesystem type %q%s cannot be judged", m.Type, src)
}

// judgeOverlay judges an overlay's directories as host paths: lowerdir
// (and the kernel's lowerdir+ and datadir+) read, upperdir and workdir
// written.
func (c *compiled) judgeOverlay(m *Mount) string {
	if m.ResolveError != "" {
		return "overlay: cannot resolve: " + m.ResolveError
	}
	var bad []string
	for _, o := range m.Options {
		key, val, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		written := false
		switch key {
		case "upperdir", "workdir":
			written = true
		case "lowerdir", "lowerdir+", "datadir+":
		default:
			continue
		}
		if strings.ContainsRune(val, '\\') {
			bad = append(bad, key+" "+val+" cannot be judged (escapes)")
			continue
		}
		dirs := []string{val}
		if key == "lowerdir" {
			dirs = strings.Split(val, ":")
		}
		for _, d := range dirs {
			if d == "" {
				continue // "::" separates data-only lower layers
			}
			if d[0] != '/' {
				bad = append(bad, key+" "+d+" is relative")
				continue
			}
			if v := c.hostPathVerdict(canonRun(cleanPath(d)), !written); v != "" {
				if v == "not allowed" {
					bad = append(bad, key+" "+d)
				} else {
					bad = append(bad, key+" "+d+", "+v)
				}
			}
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return "overlay " + strings.Join(bad, "; ")
}

// fixHostPathMounts: a pod's host paths come from hostPath volumes
// (volumes[].hostPath, Pod Security "hostPath volumes"), mounted through
// volumeMounts[] (readOnly where the policy allows a path read-only only;
// recursiveReadOnly: Enabled for an rbind); podman's from -v and --mount.
func fixHostPathMounts(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "remove the volumes[].hostPath volume or, where the policy allows the path read-only, set volumeMounts[].readOnly=true (recursiveReadOnly: Enabled for submounts)",
		"remove the -v/--volume or --mount of the host path, or add ro where the policy allows it read-only")
}

// ContainerdDirListed reports whether runtimeDirs lets this policy admit the
// files containerd's CRI binds into every container from below dir,
// containerd's root or state directory: an entry naming dir itself or its
// CRI sandboxes directory, <dir>/io.containerd.grpc.v1.cri/sandboxes (see
// runtimeManaged). `patchgate check` warns when it does not: on such a node
// /etc/hosts, /etc/hostname, /etc/resolv.conf and /dev/shm are judged as
// host paths in every pod.
func (p *Policy) ContainerdDirListed(dir string) bool {
	dir = canonRun(path.Clean(dir))
	for _, d := range p.Spec.Rules.HostPathMounts.RuntimeDirs {
		d = canonRun(path.Clean(d))
		if d == dir || d == dir+"/io.containerd.grpc.v1.cri/sandboxes" {
			return true
		}
	}
	return false
}
