package hostpath

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/patchgate/patchgate/internal/mountinfo"
)

// ErrHiddenSource is returned for a bind source that is a mount point whose
// content cannot be traced back to one host path: a bind of part of a
// filesystem that is mounted nowhere else, or is visible at several host
// paths.
var ErrHiddenSource = errors.New("bind source is a mount whose origin cannot be judged")

// Mounts is a mount table (one reading of mountinfo) that maps a path that
// is a mount point back to the host path its content comes from.
//
// Why: kubelet mounts a volume's subPath by bind-mounting <hostPath>/<subPath>
// onto <kubeletDir>/pods/<uid>/volume-subpaths/<volume>/<container>/<n> and
// gives the runtime that path as the bind source (pkg/volume/util/subpath,
// doBindSubPath). Judged by its name it is the pod's own directory; by its
// effect it is the host's /etc when the hostPath is / and the subPath etc.
// Any bind source that is a mount point can hide its origin the same way,
// so every one is traced: the mount at that path shows (major:minor, root),
// the part of which filesystem is mounted there; the host path is where
// another mount of the same filesystem shows that root.
type Mounts struct {
	m []mountinfo.Mount
	// over[i] is true when another mount is stacked on m[i] at the same
	// mount point (m[i] is hidden there).
	over []bool
}

// NewMounts builds the table from mountinfo text.
func NewMounts(data []byte) (*Mounts, error) {
	ms, err := mountinfo.Parse(data)
	if err != nil {
		return nil, err
	}
	t := &Mounts{m: ms, over: make([]bool, len(ms))}
	byID := make(map[int]int, len(ms))
	for i := range ms {
		byID[ms[i].ID] = i
	}
	for i := range ms {
		if p, ok := byID[ms[i].Parent]; ok && p != i && ms[p].MountPoint == ms[i].MountPoint {
			t.over[p] = true
		}
	}
	return t, nil
}

// top returns the index of the visible mount whose mount point is exactly
// p, or -1.
func (t *Mounts) top(p string) int {
	for i := range t.m {
		if t.m[i].MountPoint == p && !t.over[i] {
			return i
		}
	}
	return -1
}

// covering returns the index of the visible mount that p lies in: the
// deepest mount point that is p or a parent of it.
func (t *Mounts) covering(p string) int {
	best := -1
	for i := range t.m {
		mp := t.m[i].MountPoint
		if t.over[i] || !inside(p, mp) {
			continue
		}
		if best < 0 || len(mp) > len(t.m[best].MountPoint) {
			best = i
		}
	}
	return best
}

// inside reports whether p is dir or below it (both clean, absolute).
func inside(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

// Origins returns the other host paths that show the content of the mount
// at the clean absolute path p: for each other visible mount of the same
// filesystem (major:minor) whose root contains the root of p's mount, that
// mount's mount point plus the rest, if that path shows that mount (nothing
// is mounted over it). They are sorted by the length of the root they come
// through, shortest first (the mount p was bound from before a sibling bind
// of a deeper directory); tied counts how many at the front share the
// shortest root (more than one with different paths: no single origin).
//
// p that is not a mount point has no origins (nil, 0, nil), and so has a
// whole filesystem (root "/") seen nowhere else (a tmpfs volume,
// containerd's /dev/shm). A part of a filesystem seen nowhere else, a
// deleted root, or a root that is no path (nsfs) is ErrHiddenSource: its
// origin cannot be judged.
func (t *Mounts) Origins(p string) (origins []string, tied int, err error) {
	i := t.top(p)
	if i < 0 {
		return nil, 0, nil
	}
	src := &t.m[i]
	if src.Root[0] != '/' || strings.HasSuffix(src.Root, " (deleted)") {
		return nil, 0, fmt.Errorf("%w: %s is a mount of %d:%d %q", ErrHiddenSource, p, src.Major, src.Minor, src.Root)
	}
	var cands []int
	for j := range t.m {
		c := &t.m[j]
		if j == i || t.over[j] || c.Major != src.Major || c.Minor != src.Minor ||
			c.Root == "" || c.Root[0] != '/' || strings.HasSuffix(c.Root, " (deleted)") ||
			!inside(src.Root, c.Root) {
			continue
		}
		cands = append(cands, j)
	}
	slices.SortStableFunc(cands, func(a, b int) int { return len(t.m[a].Root) - len(t.m[b].Root) })
	shortest := -1
	for _, j := range cands {
		c := &t.m[j]
		rest := src.Root[len(c.Root):]
		if c.Root == "/" {
			rest = src.Root
		}
		if rest == "/" {
			rest = "" // a whole filesystem: its mount point, no trailing slash
		}
		host := c.MountPoint + rest
		if c.MountPoint == "/" {
			host = rest
		}
		if host == "" {
			host = "/"
		}
		// The path must show that mount, not one mounted over part of it.
		if t.covering(host) != j || slices.Contains(origins, host) {
			continue
		}
		if shortest < 0 {
			shortest = len(c.Root)
		}
		if len(c.Root) == shortest {
			tied++
		}
		origins = append(origins, host)
	}
	if len(origins) == 0 && src.Root != "/" {
		return nil, 0, fmt.Errorf("%w: %s is a mount of %q on %d:%d, which is mounted nowhere else", ErrHiddenSource, p, src.Root, src.Major, src.Minor)
	}
	return origins, tied, nil
}

// OriginsFunc returns a function that gives Mounts.Origins of a path
// resolved under root (Resolver: as seen with root as "/"). The mount table
// is read from mountinfo (a path on the real file system) at most once, and
// only when a path may be a mount point: isMountPoint, when not nil, answers
// that first and says whether it knows (MountRootStatx); without it every
// path is looked up in the table. With optional, a mountinfo that does not
// exist gives no origins (eval with a --host-root that is a copy, not a
// live host); any other failure to read or parse it fails every call that
// needs it.
func OriginsFunc(root, mountinfoPath string, optional bool, isMountPoint func(string) (mp, known bool)) func(string) ([]string, int, error) {
	return NewHostMounts(root, mountinfoPath, optional, isMountPoint).Origins
}

// readMountinfo reads a proc file (its size is 0 in stat) up to the
// parser's limit.
func readMountinfo(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, mountinfo.MaxSize+1))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// MountRootStatx reports whether p is the root of a mount in the caller's
// mount namespace (statx STATX_ATTR_MOUNT_ROOT, Linux 5.8), without
// following a final symlink. known is false when the kernel does not say
// (older kernels) or statx fails other than with ENOENT; a path that does
// not exist is no mount point.
func MountRootStatx(p string) (mp, known bool) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, true
	}
	if err != nil || st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return false, false
	}
	return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, true
}

// Backing describes the mount that a path lies in (the deepest visible
// mount point that is the path or a parent of it), as the hostPathMounts
// rule needs it for a bind source under a pod's kubelet directory: kubelet
// mounts the pod's inline volumes there (an iSCSI or FC disk, NFS, RBD,
// CephFS, a tmpfs for a configMap), and the runtime binds that directory.
type Backing struct {
	// MountPoint, FSType, Source and Root are the mount's, from mountinfo.
	MountPoint, FSType, Source, Root string
	// KubeletFS: the mount is of the same filesystem (major:minor) as the
	// mount that the kubelet directory lies in.
	KubeletFS bool
	// Origins and OriginsTied are Origins(MountPoint) when MountPoint lies
	// below the kubelet directory: the other host paths that show it.
	Origins     []string
	OriginsTied int
}

// Backing returns the mount that the clean absolute path p lies in, judged
// against the kubelet directory kubeletDir (clean, absolute). A mount below
// kubeletDir that cannot be traced (Origins: ErrHiddenSource) is an error.
func (t *Mounts) Backing(p, kubeletDir string) (Backing, error) {
	i := t.covering(p)
	k := t.covering(kubeletDir)
	if i < 0 || k < 0 {
		return Backing{}, fmt.Errorf("%s: no mount in the mount table contains it", p)
	}
	m := &t.m[i]
	b := Backing{
		MountPoint: m.MountPoint, FSType: m.FSType, Source: m.Source, Root: m.Root,
		KubeletFS: m.Major == t.m[k].Major && m.Minor == t.m[k].Minor,
	}
	if len(m.MountPoint) > len(kubeletDir) && inside(m.MountPoint, kubeletDir) {
		var err error
		if b.Origins, b.OriginsTied, err = t.Origins(m.MountPoint); err != nil {
			return Backing{}, err
		}
	}
	return b, nil
}

// HostMounts reads a host's mount table lazily, at most once, for
// OriginsFunc-style and Backing look-ups that share it.
type HostMounts struct {
	root, path   string
	optional     bool
	isMountPoint func(string) (mp, known bool)
	loaded       bool
	table        *Mounts
	err          error
}

// NewHostMounts returns a lazy reader of the mount table at mountinfoPath
// for paths under root (see OriginsFunc for optional and isMountPoint).
func NewHostMounts(root, mountinfoPath string, optional bool, isMountPoint func(string) (mp, known bool)) *HostMounts {
	return &HostMounts{root: strings.TrimRight(root, "/"), path: mountinfoPath, optional: optional, isMountPoint: isMountPoint}
}

func (h *HostMounts) load() (*Mounts, error) {
	if !h.loaded {
		h.loaded = true
		data, err := readMountinfo(h.path)
		switch {
		case err != nil && h.optional && errors.Is(err, fs.ErrNotExist):
		case err != nil:
			h.err = fmt.Errorf("reading the mount table: %w", err)
		default:
			if h.table, err = NewMounts(data); err != nil {
				h.err = fmt.Errorf("%s: %w", h.path, err)
			}
		}
	}
	return h.table, h.err
}

// Origins is Mounts.Origins of p, read from the table only when p may be a
// mount point (isMountPoint).
func (h *HostMounts) Origins(p string) ([]string, int, error) {
	if h.isMountPoint != nil {
		if mp, known := h.isMountPoint(h.root + p); known && !mp {
			return nil, 0, nil
		}
	}
	t, err := h.load()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", p, err)
	}
	if t == nil {
		return nil, 0, nil
	}
	return t.Origins(p)
}

// Backing is Mounts.Backing of p. ok is false when there is no table (an
// optional one that does not exist).
func (h *HostMounts) Backing(p, kubeletDir string) (b Backing, ok bool, err error) {
	t, err := h.load()
	if err != nil {
		return Backing{}, false, fmt.Errorf("%s: %w", p, err)
	}
	if t == nil {
		return Backing{}, false, nil
	}
	b, err = t.Backing(p, kubeletDir)
	return b, err == nil, err
}
