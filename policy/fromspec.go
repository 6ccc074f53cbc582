package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchgate/patchgate/internal/hostpath"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrInvalidSpec: an OCI runtime spec that cannot be judged.
var ErrInvalidSpec = errors.New("invalid OCI runtime spec")

// CRI annotations that containerd sets on container and sandbox specs
// (github.com/containerd/containerd/v2/internal/cri/annotations). Only
// containerd vouches for them: CRI-O copies a pod's annotations of these
// names into its specs, and podman and runc users write any annotation.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
)

// FromSpecOptions carries what a front end knows besides the spec.
type FromSpecOptions struct {
	// Source names the front end ("hook", "eval").
	Source string
	// Pod and Container are the workload's identity, as the front end
	// read it from what its runtime vouches for (see
	// PodAnnotationsFromSandbox).
	Pod       PodIdentity
	Container ContainerIdentity
	// HostNamespace reports whether the namespace file at path, of OCI type
	// typ, is the host's own namespace. It is the only I/O FromSpec does;
	// HostNamespaceResolver gives the usual one. When nil, a namespace path
	// that the sandbox spec does not explain leaves the hostNamespaces rule
	// deferred.
	HostNamespace func(typ, path string) (bool, error)
	// Bundle is the container's absolute bundle directory, when known: a
	// relative bind-mount source is relative to it (OCI runtime-spec,
	// config.md "mounts") and is resolved against it, so that the
	// hostPathMounts rule judges the host path it names. Without it, a
	// relative source that leaves the bundle with ".." is a violation.
	Bundle string
	// ResolvePath returns the host path that the absolute path p names
	// once every symlink in it is followed, the way the runtime that mounts
	// it will (hostpath.Resolver gives the usual one, which never leaves
	// its root). FromSpec resolves bind-mount sources and overlay
	// directories with it; an error is kept in Mount.ResolveError and is a
	// hostPathMounts violation. When nil, paths are judged as written
	// (cleaned), which a symlink on the host can defeat: only front ends
	// that cannot look at the host (eval without --host-root) leave it nil.
	ResolvePath func(p string) (string, error)
	// MountOrigins returns, for a resolved bind source that is a mount
	// point on the host, the other host paths that show its content,
	// shortest filesystem root first, and how many share that root
	// (hostpath.OriginsFunc reads the host's mount table). An error (an
	// origin that cannot be traced) is kept in Mount.ResolveError and is a
	// hostPathMounts violation. Used only with ResolvePath.
	MountOrigins func(p string) (origins []string, tied int, err error)
	// PodMountBacking returns the host mount that the resolved bind source
	// p lies in, judged against the kubelet directory kubeletDir; FromSpec
	// calls it only for a source under <kubeletDir>/pods/<the pod's uid>/
	// (with the pod's UID known), so that a front end reads the host's
	// mount table only then. nil, nil: no mount table to look in. An error
	// (a mount that cannot be traced) is kept in Mount.ResolveError and is
	// a hostPathMounts violation. Used only with ResolvePath.
	PodMountBacking func(p, kubeletDir string) (*MountBacking, error)
	// PodAnnotationsFromSandbox adds the sandbox spec's annotations to the
	// pod's (Pod.Annotations keeps its own where both have a key). Set it
	// only when the runtime that wrote the sandbox spec is known (containerd
	// under the kubelet copies there only the pod annotations its
	// pod_annotations list passes).
	//
	// FromSpec never reads the pod's or the container's identity (namespace,
	// name, UID, image: what exemptions match) from the spec's annotations:
	// which keys a runtime writes itself, and which ones a pod author or a
	// podman user can set too, depends on the runtime (CRI-O copies every
	// pod annotation into its specs, containerd's keys included), so the
	// front end that knows the runtime reads them (hook.IdentityFrom) and
	// passes them as Pod and Container.
	PodAnnotationsFromSandbox bool
	// PodSysctlsInSandbox says the caller knows the spec is a containerd
	// CRI application container (its identity vouched for, as for
	// PodAnnotationsFromSandbox), whose pod's sysctls are in the sandbox
	// spec only: without that spec the sysctls rule is not judged here
	// (Seen). Never decided from the spec's own annotations: anyone can
	// write io.kubernetes.cri.container-type=container into a podman or
	// runc spec (or a CRI-O pod into its infra spec) to make its own
	// linux.sysctl go unjudged, which spec.hook.onError: allow admits.
	PodSysctlsInSandbox bool
	// LiveIDMappings are the uid and gid mappings in force in the
	// container's user namespace, read by the front end from the kernel
	// (/proc/<pid>/uid_map and gid_map of the container's process; see
	// ParseIDMap). When set they are what runAsRoot judges, whatever the
	// spec or the sandbox spec claim: the namespace may have been joined by
	// path (containerd's pinned pod user namespace, or one the user chose).
	LiveIDMappings *LiveIDMappings
	// HostAppArmor says that the host enforces AppArmor (HostAppArmorEnabled
	// reads it), so an empty process.apparmorProfile means unconfined.
	HostAppArmor bool
	// AppArmorMode returns the mode the host has loaded a named profile
	// in (AppArmorModeResolver reads the kernel's list once). Called only
	// with HostAppArmor, and only for a container that names a profile
	// other than unconfined; the result is Workload.AppArmorMode. nil (a
	// front end that cannot see the host) judges the profile by its name.
	AppArmorMode func(profile string) string
}

// HostAppArmorEnabled reports whether the host under hostRoot enforces
// AppArmor: <hostRoot>/sys/module/apparmor/parameters/enabled reads "Y"
// (the file the kernel's AppArmor module exports, and the one runc's and
// containerd's apparmor.HostSupports read). A missing file means no
// AppArmor; any other read error is returned, and the caller takes the
// strict side.
func HostAppArmorEnabled(hostRoot string) (bool, error) {
	if hostRoot == "" {
		hostRoot = "/"
	}
	b, err := os.ReadFile(filepath.Join(hostRoot, "sys", "module", "apparmor", "parameters", "enabled"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("AppArmor state: %w", err)
	}
	return len(b) > 0 && b[0] == 'Y', nil
}

// ParseSpec decodes an OCI runtime spec (config.json). Unknown fields are
// accepted: newer runtime-spec versions add fields. A key given twice in
// one object, or two keys that differ only in case, are refused
// (CheckStrictJSON): runtimes may read them differently.
func ParseSpec(data []byte) (*specs.Spec, error) {
	if err := CheckStrictJSON(data); err != nil {
		if !errors.Is(err, ErrInvalidSpec) {
			err = invalidSpecError{err}
		}
		return nil, err
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidSpec)
	}
	return &s, nil
}

// invalidSpecError marks an error (ErrAmbiguousKey) as ErrInvalidSpec too,
// keeping its message: every ParseSpec error is ErrInvalidSpec, which
// FuzzEvaluateSpec checks.
type invalidSpecError struct{ err error }

func (e invalidSpecError) Error() string        { return e.err.Error() }
func (e invalidSpecError) Unwrap() error        { return e.err }
func (e invalidSpecError) Is(target error) bool { return target == ErrInvalidSpec }

// FromSpec builds the Workload of a container from its OCI runtime spec and,
// when known, its pod sandbox's spec. It fails with ErrInvalidSpec when the
// spec lacks process or linux.
func FromSpec(spec, sandbox *specs.Spec, opts FromSpecOptions) (*Workload, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no spec", ErrInvalidSpec)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("%w: process is missing", ErrInvalidSpec)
	}
	if spec.Linux == nil {
		return nil, fmt.Errorf("%w: linux is missing (patchgate judges Linux containers)", ErrInvalidSpec)
	}
	if sandbox != nil && sandbox.Linux == nil {
		return nil, fmt.Errorf("%w: sandbox spec: linux is missing", ErrInvalidSpec)
	}
	w := &Workload{Source: opts.Source, Seen: FieldsAll}
	lx := spec.Linux

	// Identity: only what the front end passes (see
	// PodAnnotationsFromSandbox).
	ann := spec.Annotations
	w.Annotations = copyMap(ann)
	w.Pod = opts.Pod
	w.Pod.Labels = copyMap(opts.Pod.Labels)
	w.Pod.Annotations = copyMap(opts.Pod.Annotations)
	if sandbox != nil && opts.PodAnnotationsFromSandbox {
		for k, v := range sandbox.Annotations {
			if w.Pod.Annotations == nil {
				w.Pod.Annotations = map[string]string{}
			}
			if _, set := w.Pod.Annotations[k]; !set {
				w.Pod.Annotations[k] = v
			}
		}
	}
	w.Container = opts.Container

	// User.
	w.User = User{UID: spec.Process.User.UID, GID: spec.Process.User.GID}
	userNS := findNS(lx.Namespaces, specs.UserNamespace)
	w.User.UserNamespace = userNS != nil
	maps, gmaps := lx.UIDMappings, lx.GIDMappings
	if userNS != nil && sandbox != nil {
		if len(maps) == 0 {
			maps = sandbox.Linux.UIDMappings
		}
		if len(gmaps) == 0 {
			gmaps = sandbox.Linux.GIDMappings
		}
	}
	if userNS != nil && userNS.Path != "" {
		// Joined by path: the runtime writes no mappings into an existing
		// namespace, the namespace's own are in force, and the spec's may
		// say anything ({"path": "/proc/1/ns/user"} with uid 0 "mapped" to
		// 100000 is host root). Only a sandbox spec that created the
		// namespace itself (containerd CRI) says what they are; otherwise
		// they are not visible and runAsRoot judges the container as root.
		maps, gmaps = nil, nil
		if sandbox != nil {
			if sns := findNS(sandbox.Linux.Namespaces, specs.UserNamespace); sns != nil && sns.Path == "" {
				maps, gmaps = sandbox.Linux.UIDMappings, sandbox.Linux.GIDMappings
			}
		}
	}
	if userNS != nil && opts.LiveIDMappings != nil {
		// What the kernel says is in force.
		maps, gmaps = nil, nil
		w.User.UIDMappings = append([]IDMapping(nil), opts.LiveIDMappings.UID...)
		w.User.GIDMappings = append([]IDMapping(nil), opts.LiveIDMappings.GID...)
	}
	for _, m := range maps {
		w.User.UIDMappings = append(w.User.UIDMappings, IDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	for _, m := range gmaps {
		w.User.GIDMappings = append(w.User.GIDMappings, IDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}

	if c := spec.Process.Capabilities; c != nil {
		w.Capabilities = Capabilities{
			Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted,
			Inheritable: c.Inheritable, Ambient: c.Ambient,
		}
	}
	w.NoNewPrivileges = spec.Process.NoNewPrivileges
	w.AppArmorProfile = spec.Process.ApparmorProfile
	w.HostAppArmor = opts.HostAppArmor
	if opts.HostAppArmor && opts.AppArmorMode != nil && strings.TrimSpace(w.AppArmorProfile) != "" && !appArmorUnconfined(w.AppArmorProfile) {
		w.AppArmorMode = opts.AppArmorMode(w.AppArmorProfile)
	}
	w.MaskedPaths = lx.MaskedPaths
	w.ReadonlyPaths = lx.ReadonlyPaths

	bundle := ""
	if filepath.IsAbs(opts.Bundle) {
		bundle = filepath.Clean(opts.Bundle)
	}
	for _, m := range spec.Mounts {
		wm := Mount{Destination: m.Destination, Source: m.Source, Type: m.Type, Options: m.Options}
		if isBind(&wm) && wm.Source != "" {
			raw := wm.Source
			if bundle != "" && !filepath.IsAbs(raw) {
				// runc joins a relative bind source to its working
				// directory, the bundle (libcontainer/specconv
				// createLibcontainerMount).
				raw = bundle + "/" + raw
				wm.Source = filepath.Join(bundle, wm.Source)
			}
			if opts.ResolvePath != nil && filepath.IsAbs(raw) {
				if r, err := opts.ResolvePath(raw); err != nil {
					wm.ResolveError = err.Error()
				} else {
					wm.Resolved = r
					if opts.MountOrigins != nil {
						if wm.Origins, wm.OriginsTied, err = opts.MountOrigins(r); err != nil {
							wm.ResolveError = err.Error()
						}
					}
					if k := podKubeletDir(r, w.Pod.UID); k != "" && opts.PodMountBacking != nil && wm.ResolveError == "" {
						if wm.Backing, err = opts.PodMountBacking(r, k); err != nil {
							wm.ResolveError = err.Error()
						}
					}
				}
			}
		} else if wm.Type == "overlay" && opts.ResolvePath != nil {
			wm.Options, wm.ResolveError = resolveOverlayDirs(wm.Options, opts.ResolvePath)
		}
		w.Mounts = append(w.Mounts, wm)
	}
	for _, d := range lx.Devices {
		w.Devices = append(w.Devices, Device{Path: d.Path, Type: d.Type, Major: d.Major, Minor: d.Minor})
	}
	if lx.Resources != nil {
		w.DevicesAllowAll, w.DeviceCgroup = DeviceCgroupAllowed(lx.Resources.Devices)
	}
	w.SeccompUnconfined = lx.Seccomp == nil ||
		(lx.Seccomp.DefaultAction == specs.ActAllow && len(lx.Seccomp.Syscalls) == 0)
	if sc := lx.Seccomp; sc != nil {
		rules := make([]SeccompSyscall, len(sc.Syscalls))
		for i, r := range sc.Syscalls {
			rules[i] = SeccompSyscall{Names: r.Names, Action: string(r.Action)}
			for _, a := range r.Args {
				rules[i].Args = append(rules[i].Args, SeccompArg{Index: a.Index, Value: a.Value, ValueTwo: a.ValueTwo, Op: string(a.Op)})
			}
		}
		w.Seccomp = SummarizeSeccomp(string(sc.DefaultAction), rules)
	}

	// Sysctls: the sandbox's (pod sysctls), overridden by the container's.
	if sandbox != nil {
		for k, v := range sandbox.Linux.Sysctl {
			if w.Sysctls == nil {
				w.Sysctls = map[string]string{}
			}
			w.Sysctls[k] = v
		}
	} else if opts.PodSysctlsInSandbox {
		// A CRI container's pod sysctls are in the sandbox spec only.
		w.Seen &^= FieldSysctls
	}
	for k, v := range lx.Sysctl {
		if w.Sysctls == nil {
			w.Sysctls = map[string]string{}
		}
		w.Sysctls[k] = v
	}

	// Host namespaces.
	if ns := findNS(lx.Namespaces, specs.MountNamespace); ns != nil && ns.Path != "" {
		w.MountNamespacePath = ns.Path
	}
	for _, typ := range namespaceTypes {
		host, known := hostNamespace(specs.LinuxNamespaceType(typ), lx.Namespaces, sandbox, opts.HostNamespace)
		switch {
		case !known:
			// Not seen as a whole; the rule still judges the namespaces
			// that are known (a missing pid namespace is the host's
			// whatever the others are) and defers on the rest.
			w.Seen &^= FieldHostNamespaces
			w.UnknownNamespaces = append(w.UnknownNamespaces, typ)
		case host:
			w.HostNamespaces = append(w.HostNamespaces, typ)
		}
	}
	if w.User.UserNamespace && slices.Contains(w.HostNamespaces, "user") {
		// The host's own user namespace (joined by path): uids are host
		// uids, whatever mappings the spec lists.
		w.User.UserNamespace = false
		w.User.UIDMappings, w.User.GIDMappings = nil, nil
	}
	return w, nil
}

// resolveOverlayDirs returns a copy of an overlay's options with every
// absolute lowerdir, upperdir and workdir (and lowerdir+, datadir+)
// resolved; relative or escaped ones are left for the rule to refuse.
func resolveOverlayDirs(opts []string, resolve func(string) (string, error)) ([]string, string) {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o
		key, val, ok := strings.Cut(o, "=")
		if !ok || strings.ContainsRune(val, '\\') {
			continue
		}
		switch key {
		case "lowerdir", "lowerdir+", "datadir+", "upperdir", "workdir":
		default:
			continue
		}
		dirs := []string{val}
		if key == "lowerdir" {
			dirs = strings.Split(val, ":")
		}
		for j, d := range dirs {
			if !filepath.IsAbs(d) {
				continue
			}
			r, err := resolve(d)
			if err != nil {
				return opts, key + " " + d + ": " + err.Error()
			}
			dirs[j] = r
		}
		out[i] = key + "=" + strings.Join(dirs, ":")
	}
	return out, ""
}

func findNS(list []specs.LinuxNamespace, typ specs.LinuxNamespaceType) *specs.LinuxNamespace {
	for i := range list {
		if list[i].Type == typ {
			return &list[i]
		}
	}
	return nil
}

// hostNamespace works out whether the container shares the host's namespace
// of type typ; known is false when that cannot be told without I/O that the
// caller did not allow.
func hostNamespace(typ specs.LinuxNamespaceType, nss []specs.LinuxNamespace, sandbox *specs.Spec, resolve func(typ, path string) (bool, error)) (host, known bool) {
	ns := findNS(nss, typ)
	switch {
	case ns == nil:
		// No namespace of this type: the container stays in the runtime's,
		// which is the host's.
		return true, true
	case ns.Path == "":
		return false, true
	case sandbox != nil:
		// containerd CRI: the container joins the sandbox's namespace by
		// path; the sandbox lacks it when the pod uses the host's.
		if findNS(sandbox.Linux.Namespaces, typ) == nil {
			return true, true
		}
		if resolve != nil {
			if h, err := resolve(string(typ), ns.Path); err == nil {
				return h, true
			}
		}
		return false, true
	case resolve != nil:
		h, err := resolve(string(typ), ns.Path)
		if err != nil {
			return false, false
		}
		return h, true
	}
	return false, false
}

// ProcNamespaceName is the name of an OCI namespace type under
// /proc/<pid>/ns ("network" is "net", "mount" is "mnt").
func ProcNamespaceName(typ string) string { return procNSName(typ) }

// procNSName is the name of a namespace type under /proc/<pid>/ns.
func procNSName(typ string) string {
	switch typ {
	case "network":
		return "net"
	case "mount":
		return "mnt"
	}
	return typ
}

// HostNamespaceResolver returns a FromSpecOptions.HostNamespace that compares
// the device and inode of the namespace path with <hostRoot>/proc/1/ns/<type>
// (init's namespace is the host's). Both paths are read under hostRoot.
func HostNamespaceResolver(hostRoot string) func(typ, path string) (bool, error) {
	if hostRoot == "" {
		hostRoot = "/"
	}
	return func(typ, path string) (bool, error) {
		if !filepath.IsAbs(path) || strings.Contains(path, "\x00") {
			return false, fmt.Errorf("%w: namespace path %q is not absolute", ErrInvalidSpec, path)
		}
		var a, b syscall.Stat_t
		if err := syscall.Stat(filepath.Join(hostRoot, path), &a); err != nil {
			return false, fmt.Errorf("namespace %s: %w", path, err)
		}
		host := filepath.Join(hostRoot, "proc", "1", "ns", procNSName(typ))
		if err := syscall.Stat(host, &b); err != nil {
			return false, fmt.Errorf("namespace %s: %w", host, err)
		}
		return a.Dev == b.Dev && a.Ino == b.Ino, nil
	}
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// LiveIDMappings are a user namespace's uid and gid mappings as the kernel
// shows them.
type LiveIDMappings struct {
	UID, GID []IDMapping
}

// maxIDMapLines is the kernel's limit on the lines of a uid_map or gid_map
// (KERNEL_MAX_EXTENTS, user_namespaces(7)).
const maxIDMapLines = 340

// ParseIDMap parses /proc/<pid>/uid_map or gid_map as the kernel prints it
// (kernel/user_namespace.c uid_m_show: "%10u %10u %10u\n", the ID inside the
// namespace, the ID outside it, and the range's length, one range a line).
// Anything else (a field that is not a number, a zero length, a range that
// wraps, more than 340 lines, no line at all) is ErrInvalidSpec: the caller
// then judges the mappings not visible, which runAsRoot takes as root.
func ParseIDMap(data []byte) ([]IDMapping, error) {
	var out []IDMapping
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, fmt.Errorf("%w: id map: line without a newline", ErrInvalidSpec)
		}
		line := data[:i]
		data = data[i+1:]
		f := bytes.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: id map: %q is not three numbers", ErrInvalidSpec, line)
		}
		var v [3]uint32
		for j, s := range f {
			n, err := strconv.ParseUint(string(s), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: id map: %q: %v", ErrInvalidSpec, line, err)
			}
			v[j] = uint32(n)
		}
		if v[2] == 0 || uint64(v[0])+uint64(v[2]) > 1<<32 || uint64(v[1])+uint64(v[2]) > 1<<32 {
			return nil, fmt.Errorf("%w: id map: %q is not a valid range", ErrInvalidSpec, line)
		}
		if len(out) == maxIDMapLines {
			return nil, fmt.Errorf("%w: id map: more than %d ranges", ErrInvalidSpec, maxIDMapLines)
		}
		out = append(out, IDMapping{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: id map: empty", ErrInvalidSpec)
	}
	return out, nil
}

// podKubeletDir returns the kubelet directory that the clean absolute path
// p lies under as <kubeletDir>/pods/<uid>/..., or "" (the first such
// place: kubelet creates no pods/ directory inside a pod's).
func podKubeletDir(p, uid string) string {
	if uid == "" || strings.Contains(uid, "/") || uid == "." || uid == ".." {
		return ""
	}
	i := strings.Index(p, "/pods/"+uid+"/")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// HostMountTable is what PodMountBackingFunc needs of a host's mount table
// (hostpath.HostMounts).
type HostMountTable interface {
	Backing(p, kubeletDir string) (hostpath.Backing, bool, error)
}

// PodMountBackingFunc adapts a host's mount table to
// FromSpecOptions.PodMountBacking.
func PodMountBackingFunc(t HostMountTable) func(p, kubeletDir string) (*MountBacking, error) {
	return func(p, kubeletDir string) (*MountBacking, error) {
		b, ok, err := t.Backing(p, kubeletDir)
		if err != nil || !ok {
			return nil, err
		}
		return &MountBacking{
			KubeletDir: kubeletDir, MountPoint: b.MountPoint, FSType: b.FSType, Source: b.Source, Root: b.Root,
			KubeletFS: b.KubeletFS, Origins: b.Origins, OriginsTied: b.OriginsTied,
		}, nil
	}
}
