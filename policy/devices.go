package policy

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// devNum is a device type and numbers that the hostDevices rule admits.
// minor -1 means any minor; major is always a number.
type devNum struct {
	typ   byte // 'c' or 'b'
	major int64
	minor int64
}

func (d devNum) String() string {
	if d.minor < 0 {
		return fmt.Sprintf("%c %d:*", d.typ, d.major)
	}
	return fmt.Sprintf("%c %d:%d", d.typ, d.major, d.minor)
}

// defaultDevNums are the devices every container has whatever its spec
// says, judged by number: the read/write rules of runc's AllowedDevices
// (github.com/opencontainers/runc, libcontainer/specconv/spec_linux.go),
// which runc appends to every container's device cgroup, and which match
// the runtime-spec's "Default Devices" (config-linux.md): /dev/null 1:3,
// /dev/zero 1:5, /dev/full 1:7, /dev/random 1:8, /dev/urandom 1:9, /dev/tty
// 5:0, /dev/ptmx 5:2, and the pseudo-terminals 136:*.
//
// Left out on purpose: c 5:1 (/dev/console) is the host's system console;
// a container's /dev/console is a bind mount of its own pty (136:*), never
// the 5:1 node. c 10:200 (/dev/net/tun) is in runc's list for backward
// compatibility only; a policy that wants it lists "c 10:200". runc's
// mknod-only wildcards (c *:* m, b *:* m) grant no read or write and are
// the reason a rule that allows only "m" is not judged.
var defaultDevNums = [...]devNum{
	{'c', 1, 3}, {'c', 1, 5}, {'c', 1, 7}, {'c', 1, 8}, {'c', 1, 9},
	{'c', 5, 0}, {'c', 5, 2}, {'c', 136, -1},
}

// Limits of Linux device numbers (include/linux/kdev_t.h: MINORBITS 20, and
// 12 bits of major in the 32-bit dev_t that mknod(2) takes).
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// parseDevNum reads an entry of rules.hostDevices.allowed: "<type>
// <major>:<minor>", type c or b, minor a number or "*".
func parseDevNum(s string) (devNum, error) {
	if strings.HasPrefix(s, "/") {
		return devNum{}, fmt.Errorf("%q is a device path; devices are judged by type and number, not by path: write \"c <major>:<minor>\" or \"b <major>:<minor>\" as `ls -l %s` shows them (minor may be *), e.g. \"c 10:229\" for /dev/fuse", s, s)
	}
	f := strings.Fields(s)
	if len(f) != 2 || len(f[0]) != 1 || (f[0] != "c" && f[0] != "b") {
		return devNum{}, fmt.Errorf("%q is not a device number: want \"c <major>:<minor>\" or \"b <major>:<minor>\" (minor may be *), e.g. \"c 10:229\"", s)
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return devNum{}, fmt.Errorf("%q is not a device number: want <major>:<minor> after the type, e.g. \"c 10:229\"", s)
	}
	d := devNum{typ: f[0][0]}
	v, err := strconv.ParseInt(maj, 10, 64)
	if err != nil || v < 0 || v > maxMajor {
		return devNum{}, fmt.Errorf("%q: major %q must be a number from 0 to %d (a wildcard major would admit every device of the type)", s, maj, maxMajor)
	}
	d.major = v
	if min == "*" {
		d.minor = -1
		return d, nil
	}
	v, err = strconv.ParseInt(min, 10, 64)
	if err != nil || v < 0 || v > maxMinor {
		return devNum{}, fmt.Errorf("%q: minor %q must be a number from 0 to %d, or *", s, min, maxMinor)
	}
	d.minor = v
	return d, nil
}

// covers reports whether the allowed entry a admits the device or cgroup
// rule (typ, major, minor), where -1 is a wildcard in the rule: a wildcard
// is covered only by a wildcard.
func (a devNum) covers(typ byte, major, minor int64) bool {
	return a.typ == typ && major >= 0 && a.major == major && (a.minor < 0 || (minor >= 0 && a.minor == minor))
}

// deviceAllowed reports whether (typ, major, minor) is one of the default
// devices or a policy's allowed ones.
func (c *compiled) deviceAllowed(typ byte, major, minor int64) bool {
	for _, d := range defaultDevNums {
		if d.covers(typ, major, minor) {
			return true
		}
	}
	for _, d := range c.devAllowed {
		if d.covers(typ, major, minor) {
			return true
		}
	}
	return false
}

// Device cgroup access bits.
const (
	accRead  = 1
	accWrite = 2
	accMknod = 4
	accRWM   = accRead | accWrite | accMknod
)

// parseAccess reads a device cgroup access string; ok is false when it has
// a character other than r, w, m. An empty string is ok and 0.
func parseAccess(s string) (bits uint8, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case 'r':
			bits |= accRead
		case 'w':
			bits |= accWrite
		case 'm':
			bits |= accMknod
		default:
			return 0, false
		}
	}
	return bits, true
}

func accessString(bits uint8) string {
	var b []byte
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{accRead, 'r'}, {accWrite, 'w'}, {accMknod, 'm'}} {
		if bits&x.bit != 0 {
			b = append(b, x.c)
		}
	}
	return string(b)
}

// DeviceCgroupAllowed applies a container's device cgroup rules
// (linux.resources.devices) in order, the way runc does, and returns what
// they finally allow: every device (allowAll), or the allow exceptions of a
// cgroup that denies by default. It follows runc's device cgroup emulator
// (github.com/opencontainers/cgroups, devices/devices_emulator.go, used for
// cgroup v1 and v2 alike), which starts from "deny all", and errs on the
// allowing side wherever a runtime could allow more:
//   - a type "a" or empty (every type) allow rule switches to allow-all
//     whatever its numbers and access: runc resets on any "a" rule; so does
//     a type runc does not know, and an access that is empty (runc refuses
//     it) or unreadable, which count as "rwm";
//   - a major or minor that is absent or negative is any (runc: -1);
//   - only a deny of every type with any major and minor that takes away
//     read and write resets to deny-all; any other deny takes its access
//     away only from allow rules with exactly the same type and numbers (as
//     runc's emulator and the cgroup v1 kernel do: a deny of "b *:*" leaves
//     an earlier "b 8:0" allowed), and nothing while the cgroup allows all.
//
// The runtime's own defaults that runc appends after the spec's rules are
// not added: they are the hostDevices rule's defaults.
func DeviceCgroupAllowed(rules []specs.LinuxDeviceCgroup) (allowAll bool, allowed []DeviceRule) {
	num := func(p *int64) int64 {
		if p == nil || *p < 0 {
			return -1
		}
		return *p
	}
	var acc []uint8 // access bits of allowed, kept apart while they change
	for _, r := range rules {
		bits, ok := parseAccess(r.Access)
		major, minor := num(r.Major), num(r.Minor)
		typ := r.Type
		if r.Allow {
			if !ok || bits == 0 {
				bits = accRWM
			}
			if typ != "c" && typ != "b" {
				allowAll, allowed, acc = true, nil, nil
				continue
			}
			if !allowAll {
				allowed = append(allowed, DeviceRule{Type: typ, Major: major, Minor: minor})
				acc = append(acc, bits)
			}
			continue
		}
		if !ok {
			continue
		}
		if (typ == "" || typ == "a") && major < 0 && minor < 0 && bits&(accRead|accWrite) == accRead|accWrite {
			allowAll, allowed, acc = false, nil, nil
			continue
		}
		if allowAll || (r.Major != nil && *r.Major < -1) || (r.Minor != nil && *r.Minor < -1) {
			continue
		}
		for i := range allowed {
			if allowed[i].Type == typ && allowed[i].Major == major && allowed[i].Minor == minor {
				acc[i] &^= bits
			}
		}
	}
	out := allowed[:0]
	for i := range allowed {
		if acc[i] != 0 {
			allowed[i].Access = accessString(acc[i])
			out = append(out, allowed[i])
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return allowAll, out
}

// devicelessFS reports the filesystem types that the kernel marks "nodev" in
// /proc/filesystems (no FS_REQUIRES_DEV: they take no block device), as
// Linux 6.x lists them, without devtmpfs (which shows the host's device
// nodes). A mount of any other type that is not a bind mount mounts a
// block device (ext4, xfs, btrfs, squashfs, fuseblk, ...) or a type
// patchgate does not know; either is a host device. Which of these types
// are safe to mount is the business of the mount rules.
func devicelessFS(typ string) bool {
	switch typ {
	case "sysfs", "tmpfs", "proc", "cgroup", "cgroup2", "cpuset", "binfmt_misc", "debugfs",
		"tracefs", "securityfs", "sockfs", "bpf", "pipefs", "ramfs", "hugetlbfs", "devpts", "fuse",
		"fusectl", "overlay", "mqueue", "pstore", "configfs", "efivarfs", "autofs", "nsfs":
		return true
	}
	return false
}

// deviceMount reports whether m mounts a host device: not a bind mount
// (those are host paths, judged by hostPathMounts), and either of a
// filesystem type that takes a block device (or an unknown one), or the
// host's devtmpfs, or with a source that is a path under /dev.
func deviceMount(m *Mount) bool {
	if isBind(m) {
		return false
	}
	if m.Type == "devtmpfs" || !devicelessFS(m.Type) {
		return true
	}
	return strings.HasPrefix(m.Source, "/") && underDir(cleanAbs(m.Source), "/dev")
}

// cleanAbs cleans an absolute path lexically; it allocates only when the
// path is not clean already.
func cleanAbs(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && (len(p) == 1 || p[len(p)-1] != '/') {
		return p
	}
	return path.Clean(p)
}

// devTypeByte maps an OCI linux.devices type to 'c' or 'b'; fifo is true
// for a named pipe (no device), ok false for a type runc refuses.
func devTypeByte(t string) (typ byte, fifo, ok bool) {
	switch t {
	case "c", "u":
		return 'c', false, true
	case "b":
		return 'b', false, true
	case "p":
		return 0, true, true
	}
	return 0, false, false
}
