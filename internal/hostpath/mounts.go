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

// Origin returns the host path whose content the clean absolute path p
// shows. A path that is not a mount point, or is the mount point of a
// whole filesystem (root "/": a tmpfs, a volume the kubelet mounted), is
// its own origin. A bind of part of a filesystem is traced to the shortest
// root among the other visible mounts of that filesystem that contain it
// (the mount it was bound from, not a sibling bind of the same directory);
// none, several different host paths at that root, or a deleted root is
// ErrHiddenSource.
func (t *Mounts) Origin(p string) (string, error) {
	i := t.top(p)
	if i < 0 {
		return p, nil
	}
	src := &t.m[i]
	if src.Root == "/" {
		return p, nil
	}
	if src.Root[0] != '/' || strings.HasSuffix(src.Root, " (deleted)") {
		return "", fmt.Errorf("%w: %s is a mount of %d:%d %q", ErrHiddenSource, p, src.Major, src.Minor, src.Root)
	}
	// Candidates: the other visible mounts of that filesystem whose root
	// contains src.Root, shortest root first (a node has hundreds of
	// sibling binds of the same directories; only the shortest are
	// checked for visibility).
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
	found, bestRoot := "", -1
	ambiguous := false
	for _, j := range cands {
		c := &t.m[j]
		if bestRoot >= 0 && len(c.Root) > bestRoot {
			break
		}
		rest := src.Root[len(c.Root):]
		if c.Root == "/" {
			rest = src.Root
		}
		host := c.MountPoint + rest
		if c.MountPoint == "/" {
			host = rest
		}
		if host == "" {
			host = "/"
		}
		// The path must show that mount, not one mounted over part of it.
		if t.covering(host) != j {
			continue
		}
		switch {
		case bestRoot < 0:
			found, bestRoot = host, len(c.Root)
		case host != found:
			ambiguous = true
		}
	}
	if found == "" {
		return "", fmt.Errorf("%w: %s is a mount of %q on %d:%d, which is mounted nowhere else", ErrHiddenSource, p, src.Root, src.Major, src.Minor)
	}
	if ambiguous {
		return "", fmt.Errorf("%w: %s is a mount of %q on %d:%d, which is visible at more than one host path", ErrHiddenSource, p, src.Root, src.Major, src.Minor)
	}
	return found, nil
}

// MountResolver returns a resolver that follows symlinks as Resolver(root)
// does and then traces a result that is a mount point to its origin
// (Mounts.Origin). The mount table is read from mountinfo (a path on the
// real file system) at most once, and only when a resolved path may be a
// mount point: isMountPoint, when not nil, answers that first and says
// whether it knows (statx's STATX_ATTR_MOUNT_ROOT, see MountRootStatx);
// without it every path is looked up in the table. With optional, a
// mountinfo that does not exist means no tracing (eval with a --host-root
// that is a copy, not a live host); any other failure to read or parse it
// fails every resolution that needs it.
func MountResolver(root, mountinfoPath string, optional bool, isMountPoint func(string) (mp, known bool)) func(string) (string, error) {
	resolvePath := Resolver(root)
	var (
		loaded bool
		table  *Mounts
		terr   error
	)
	load := func() (*Mounts, error) {
		if !loaded {
			loaded = true
			data, err := readMountinfo(mountinfoPath)
			switch {
			case err != nil && optional && errors.Is(err, fs.ErrNotExist):
			case err != nil:
				terr = fmt.Errorf("reading the mount table: %w", err)
			default:
				if table, err = NewMounts(data); err != nil {
					terr = fmt.Errorf("%s: %w", mountinfoPath, err)
				}
			}
		}
		return table, terr
	}
	host := strings.TrimRight(root, "/")
	return func(p string) (string, error) {
		r, err := resolvePath(p)
		if err != nil {
			return "", err
		}
		if isMountPoint != nil {
			if mp, known := isMountPoint(host + r); known && !mp {
				return r, nil
			}
		}
		t, err := load()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if t == nil {
			return r, nil
		}
		return t.Origin(r)
	}
}

// readMountinfo reads a proc file (its size is 0 in stat) up to the
// parser's limit.
func readMountinfo(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
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
