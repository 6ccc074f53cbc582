// Package trustedpath decides whether anyone but root (or the user patchgate
// runs as) could change what a path names: a file or directory group or
// others may write, or one owned by another user, anywhere from "/" down.
// The policy loader asks it before reading a policy, and `patchgate install`
// before writing the binaries the runtime runs for every container: a file
// someone else can replace is a takeover of every container it admits.
package trustedpath

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/patchgate/patchgate/internal/hostpath"
)

// Error is a path someone else could change. Its text names the path and
// why; callers add their own sentinel (policy.ErrInsecure).
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func insecure(format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...)}
}

// Check refuses a file or directory that group or others may write, or
// that is owned by anyone but root or the current user.
//
// One exception: the root directory of a Kubernetes ConfigMap volume
// (KubeletVolumeRoot), mode 0777 but mounted read-only, whose files are
// reached through kubelet's root-owned symlinks. A read-only mount alone is
// no exception: a world-writable host directory bind-mounted read-only is
// still written through its host path.
func Check(name string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 && !(fi.IsDir() && KubeletVolumeRoot(name)) {
		return insecure("%s is writable by group or others (mode %04o)", name, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return insecure("%s: cannot read the owner", name)
	}
	if euid := uint32(os.Geteuid()); st.Uid != 0 && st.Uid != euid {
		return insecure("%s is owned by uid %d, not root", name, st.Uid)
	}
	return nil
}

// Chain walks name from "/" the way open(2) resolves it and refuses it
// when anyone but root (or the user patchgate runs as) could change what it
// names: a directory on the way that group or others may write, or a
// symlink on the way owned by another user (its target is then walked the
// same way). Two exceptions, where the write bits give nobody a way in: the
// root of a Kubernetes ConfigMap volume (KubeletVolumeRoot: a 0777
// directory, mounted read-only, whose ..data symlink is root's), and a sticky directory
// (/tmp) owned by root whose entry on the way is root's too, which no one
// else may then rename or remove.
//
// It returns the path name resolves to, with no symlink left in it.
func Chain(name string) (string, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", err
	}
	return ChainIn("/", abs)
}

// ChainIn is Chain for the absolute path name of the machine whose "/" is
// at root (a node's / mounted at /host in patchgate's pod): every
// component is looked up under root, ".." stops at root, an absolute
// symlink restarts at root, as on that machine. Errors and the result name
// paths as that machine sees them.
func ChainIn(root, name string) (string, error) {
	if !filepath.IsAbs(name) {
		return "", fmt.Errorf("%s: not an absolute path", name)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	cur := "/"
	dir, err := os.Lstat(at(cur))
	if err != nil {
		return "", err
	}
	if !OwnedByUs(dir) {
		return "", insecure("%s (on the way to %s) is owned by uid %d, not root", cur, name, Owner(dir))
	}
	queue := strings.Split(strings.TrimPrefix(name, "/"), "/")
	for hops := 0; len(queue) > 0; {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			if dir, err = os.Lstat(at(cur)); err != nil {
				return "", err
			}
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(at(next))
		if err != nil {
			return "", err
		}
		if !OwnedByUs(fi) {
			return "", insecure("%s (on the way to %s) is owned by uid %d, not root", next, name, Owner(fi))
		}
		if perm := dir.Mode().Perm(); perm&0o022 != 0 && !KubeletVolumeRoot(at(cur)) && dir.Mode()&fs.ModeSticky == 0 {
			return "", insecure("directory %s (on the way to %s) is writable by group or others (mode %04o): they could replace %s", cur, name, perm, c)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur, dir = next, fi
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symlinks", name)
		}
		target, err := os.Readlink(at(next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
			if dir, err = os.Lstat(at(cur)); err != nil {
				return "", err
			}
		}
		queue = append(strings.Split(target, "/"), queue...)
	}
	return cur, nil
}

// OwnedByUs: owned by root or by the user patchgate runs as.
func OwnedByUs(fi fs.FileInfo) bool {
	uid := Owner(fi)
	return uid == 0 || uid == uint32(os.Geteuid())
}

func Owner(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0)
}

// KubeletVolumeRoot reports whether dir is the root of a volume kubelet's
// atomic writer fills (ConfigMap, Secret, projected), as a container sees
// it: the root of a read-only mount, holding a "..data" symlink owned by
// root. kubelet makes that directory 0777 (an emptyDir) on the node, under
// its root-only pods directory, and bind-mounts it read-only. The write bits
// then give nobody a way in from the container, and the files lie behind
// root-owned symlinks in a root-owned 0755 directory (checked on the way).
//
// A read-only mount alone does not do: a world-writable host directory
// bind-mounted read-only (a hostPath, podman -v dir:/etc/patchgate:ro) can
// still be written through its host path, by anyone. Only root (kubelet)
// can have made the root-owned ..data symlink; a directory that is not a
// mount root, or whose mount root status the kernel does not tell, is no
// such volume.
func KubeletVolumeRoot(dir string) bool {
	if !ReadOnlyFS(dir) || !MountRoot(dir) {
		return false
	}
	fi, err := os.Lstat(filepath.Join(dir, "..data"))
	return err == nil && fi.Mode()&fs.ModeSymlink != 0 && Owner(fi) == 0
}

// MountRoot reports whether dir is the root of a mount in this mount
// namespace: statx's STATX_ATTR_MOUNT_ROOT (hostpath.MountRootStatx, Linux
// 5.8), else a device that differs from its parent's. A bind mount within
// one filesystem on an older kernel is then not recognized, and refused
// (the strict side).
func MountRoot(dir string) bool {
	if mp, known := hostpath.MountRootStatx(dir); known {
		return mp
	}
	var st, parent syscall.Stat_t
	if syscall.Lstat(dir, &st) != nil || syscall.Lstat(filepath.Join(dir, ".."), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// ReadOnlyFS reports whether name is on a filesystem mounted read-only.
func ReadOnlyFS(name string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(name, &st); err != nil {
		return false
	}
	return st.Flags&stRdonly != 0
}

// stRdonly is ST_RDONLY in statfs(2)'s f_flags.
const stRdonly = 0x1
