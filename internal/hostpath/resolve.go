// Package hostpath resolves a host path the way the kernel will when a
// runtime mounts it: every "..", "//" and symlink followed, component by
// component, but inside a root directory that a symlink can never leave
// (absolute targets start again at the root, ".." stops at it), in the
// spirit of openat2(RESOLVE_IN_ROOT) and github.com/cyphar/filepath-securejoin.
//
// It is the I/O half of the hostPathMounts rule: front ends (hook, eval)
// pass Resolver(root) as policy.FromSpecOptions.ResolvePath, and the rule
// itself stays pure.
package hostpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// MaxSymlinks is how many symlinks one resolution follows before it fails,
// as the kernel's MAXSYMLINKS (40, include/linux/namei.h).
const MaxSymlinks = 40

// ErrTooManyLinks is returned when a path needs more than MaxSymlinks
// symlinks (a loop, or a chain made to exhaust the resolver).
var ErrTooManyLinks = errors.New("too many levels of symbolic links")

// ErrMagicLink is returned for a path through a symlink under /proc
// (/proc/self, /proc/<pid>/root, /proc/<pid>/fd/<n>, ...): what the kernel
// reaches through it is not what its text says, so it cannot be judged.
var ErrMagicLink = errors.New("symlink under /proc cannot be judged")

// ErrNotAbsolute is returned for a path that does not start with "/" or
// holds a NUL byte.
var ErrNotAbsolute = errors.New("not an absolute path")

// fsOps are the two calls resolution needs; tests replace them.
type fsOps struct {
	lstat    func(string) (fs.FileInfo, error)
	readlink func(string) (string, error)
}

var osOps = fsOps{lstat: os.Lstat, readlink: os.Readlink}

// Resolver returns a function that resolves absolute paths under root (""
// means "/"). The result is the host path, absolute, clean, as seen with
// root as "/".
func Resolver(root string) func(p string) (string, error) {
	if root == "" {
		root = "/"
	}
	root = strings.TrimRight(root, "/")
	return func(p string) (string, error) { return resolve(osOps, root, p) }
}

// Resolve resolves p under root with the real file system.
func Resolve(root, p string) (string, error) { return Resolver(root)(p) }

// resolve walks p. A component that does not exist ends the walk: the rest
// is appended lexically ("..": one element up), since nothing on the host
// can redirect it yet (a runtime's mount of it fails, or kubelet creates it
// as a plain directory). A component that exists but is not a directory
// while more follow is an error (the kernel fails with ENOTDIR), as is any
// other lstat or readlink error.
func resolve(ops fsOps, root, p string) (string, error) {
	if p == "" || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrNotAbsolute, p)
	}
	// done holds the resolved components; todo what is left, front first.
	var done []string
	todo := p
	links := 0
	missing := false
	for todo != "" {
		var c string
		c, todo = next(todo)
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		if missing {
			done = append(done, c)
			continue
		}
		cur := "/" + strings.Join(append(done, c), "/")
		fi, err := ops.lstat(root + cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				missing = true
				done = append(done, c)
				continue
			}
			if errors.Is(err, syscall.ENOTDIR) {
				return "", fmt.Errorf("%s: %s is not a directory", p, "/"+strings.Join(done, "/"))
			}
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.IsDir() && todo != "" {
				return "", fmt.Errorf("%s: %s is not a directory", p, cur)
			}
			done = append(done, c)
			continue
		}
		if cur == "/proc" || strings.HasPrefix(cur, "/proc/") {
			// /proc/<pid>/root, cwd, exe and fd/<n> are magic links: the
			// kernel follows the object, in that process's mount
			// namespace, not the text readlink returns.
			return "", fmt.Errorf("%s: %w: %s", p, ErrMagicLink, cur)
		}
		links++
		if links > MaxSymlinks {
			return "", fmt.Errorf("%s: %w", p, ErrTooManyLinks)
		}
		target, err := ops.readlink(root + cur)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if target == "" || strings.IndexByte(target, 0) >= 0 {
			return "", fmt.Errorf("%s: %s is a symlink with an empty or invalid target", p, cur)
		}
		if target[0] == '/' {
			done = done[:0]
		}
		if todo == "" {
			todo = target
		} else {
			todo = target + "/" + todo
		}
	}
	return "/" + strings.Join(done, "/"), nil
}

// next splits the first component off s.
func next(s string) (string, string) {
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
