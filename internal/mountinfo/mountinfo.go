// Package mountinfo parses /proc/<pid>/mountinfo, the kernel's list of the
// mounts in a process's mount namespace (proc(5), "/proc/pid/mountinfo";
// fs/proc_namespace.c show_mountinfo). The hostPathMounts rule needs it to
// see where a bind source that is itself a mount point really comes from:
// kubelet's subPath mounts are binds of <hostPath>/<subPath> placed under
// the pod's own directory.
//
// A line is
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// mount ID, parent ID, major:minor, root (the path inside the filesystem
// that is mounted), mount point (relative to the process's root), per-mount
// options, zero or more optional fields tag[:value], a "-", the filesystem
// type, the mount source and the superblock options. Fields are separated
// by one space; the kernel writes space, tab, newline and backslash inside
// a field as a backslash and three octal digits (seq_escape with
// " \t\n\\"). The parser is strict: anything else is an error.
package mountinfo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid: the text is not mountinfo as the kernel writes it.
var ErrInvalid = errors.New("invalid mountinfo")

// MaxSize is the largest mountinfo Parse accepts (a node with many pods
// has a few thousand mounts of ~150 bytes each).
const MaxSize = 16 << 20

// Mount is one line.
type Mount struct {
	ID, Parent   int
	Major, Minor uint32
	// Root is the path inside the filesystem that is mounted ("/" for the
	// whole filesystem; a bind mount of a directory shows that directory).
	// Not always a path: an nsfs mount shows "net:[4026531840]".
	Root string
	// MountPoint is where it is mounted, absolute.
	MountPoint string
	Options    string
	Optional   []string
	FSType     string
	Source     string
	SuperOpts  string
}

// Parse parses a whole mountinfo file. Every line must end in a newline.
func Parse(data []byte) ([]Mount, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	s := string(data)
	if s != "" && s[len(s)-1] != '\n' {
		return nil, fmt.Errorf("%w: last line has no newline", ErrInvalid)
	}
	out := make([]Mount, 0, strings.Count(s, "\n"))
	for n := 1; s != ""; n++ {
		i := strings.IndexByte(s, '\n')
		line := s[:i]
		s = s[i+1:]
		m, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ParseLine parses one line, without its newline.
func ParseLine(line string) (Mount, error) {
	var m Mount
	var buf [16]string
	f := split(line, buf[:0])
	if len(f) < 10 {
		return m, fmt.Errorf("%w: %d fields, want at least 10: %q", ErrInvalid, len(f), line)
	}
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) != sep+4 {
		return m, fmt.Errorf("%w: want \"-\" then fstype, source, super options: %q", ErrInvalid, line)
	}
	var err error
	if m.ID, err = decimal(f[0]); err != nil {
		return m, fmt.Errorf("%w: mount ID: %v", ErrInvalid, err)
	}
	if m.Parent, err = decimal(f[1]); err != nil {
		return m, fmt.Errorf("%w: parent ID: %v", ErrInvalid, err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("%w: major:minor %q", ErrInvalid, f[2])
	}
	a, err1 := decimal(maj)
	b, err2 := decimal(min)
	if err1 != nil || err2 != nil || a > 1<<12-1 || b > 1<<20-1 {
		// The kernel's dev_t: 12-bit major, 20-bit minor (MAJOR/MINOR in
		// include/linux/kdev_t.h).
		return m, fmt.Errorf("%w: major:minor %q", ErrInvalid, f[2])
	}
	m.Major, m.Minor = uint32(a), uint32(b)
	if m.Root, err = unescape(f[3]); err != nil || m.Root == "" {
		return m, fmt.Errorf("%w: root %q", ErrInvalid, f[3])
	}
	if m.MountPoint, err = unescape(f[4]); err != nil || m.MountPoint == "" || m.MountPoint[0] != '/' {
		return m, fmt.Errorf("%w: mount point %q", ErrInvalid, f[4])
	}
	if m.Options = f[5]; m.Options == "" {
		return m, fmt.Errorf("%w: empty mount options", ErrInvalid)
	}
	for _, o := range f[6:sep] {
		// tag[:value]: shared:N, master:N, propagate_from:N, unbindable;
		// proc(5): ignore the ones you do not know.
		if o == "" {
			return m, fmt.Errorf("%w: empty optional field: %q", ErrInvalid, line)
		}
		m.Optional = append(m.Optional, o)
	}
	if m.FSType, err = unescape(f[sep+1]); err != nil || m.FSType == "" {
		return m, fmt.Errorf("%w: filesystem type %q", ErrInvalid, f[sep+1])
	}
	// The source may be empty (mount -t tmpfs "" /mnt).
	if m.Source, err = unescape(f[sep+2]); err != nil {
		return m, fmt.Errorf("%w: source %q", ErrInvalid, f[sep+2])
	}
	if m.SuperOpts = f[sep+3]; m.SuperOpts == "" {
		return m, fmt.Errorf("%w: empty super options", ErrInvalid)
	}
	return m, nil
}

// split splits s at every space, into buf while it has room.
func split(s string, buf []string) []string {
	for {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return append(buf, s)
		}
		buf = append(buf, s[:i])
		s = s[i+1:]
	}
}

// decimal parses a non-negative decimal without sign or leading zeros.
func decimal(s string) (int, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q", s)
	}
	return int(n), nil
}

// unescape decodes the kernel's \ooo escapes. A backslash followed by
// anything but three octal digits, and a raw tab, are errors (the kernel
// escapes them).
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\t') >= 0 {
		return "", errors.New("raw tab")
	}
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+3 >= len(s) {
			return "", errors.New("short escape")
		}
		v := 0
		for j := 1; j <= 3; j++ {
			d := s[i+j]
			if d < '0' || d > '7' {
				return "", errors.New("bad escape")
			}
			v = v*8 + int(d-'0')
		}
		if v > 0xff {
			return "", errors.New("bad escape")
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
