// Package kver compares kernel versions the way the distribution's package
// manager does: dpkg ordering for Debian and Ubuntu, rpm ordering for
// RHEL-like systems, Amazon Linux, Oracle Linux and SUSE. Kernel releases are
// never compared as semver: "5.15.0-91-generic" and "4.18.0-513.9.1.el8_9.x86_64"
// carry ABI numbers, distro tags, flavours and architectures that semver gets
// wrong.
//
// The package is pure: no I/O. Detecting the family from /etc/os-release lives
// in package livepatch.
//
// What is compared:
//
//   - dpkg: [epoch:]upstream[-revision], ordered as dpkg's verrevcmp
//     (lib/dpkg/version.c): digits compare numerically, letters sort before
//     non-letters, '~' sorts before everything, even the end of the string.
//     A kernel flavour ("-generic", "-amd64", "-cloud-amd64", "-aws") is not
//     part of the version and is removed first: everything from the first
//     hyphen-separated field (after the first field) that starts with a
//     letter. "6.1.0-18-amd64" compares as "6.1.0-18", and
//     "5.15.0-91.101~20.04.1-generic" as "5.15.0-91.101~20.04.1".
//   - rpm: [epoch:]version[-release], ordered as rpm's rpmvercmp (rpmio/rpmvercmp.c,
//     with '~' sorting before and '^' after the base version) applied to epoch,
//     version and release in turn; a missing release is older than any
//     release, as in rpm's rpmverCmp (rpmio/rpmver.c). A trailing architecture (".x86_64",
//     ".aarch64", ...) with an optional "+debug"-style variant, and a SUSE
//     flavour ("-default", "-azure") are removed first:
//     "4.18.0-513.9.1.el8_9.x86_64" compares as "4.18.0-513.9.1.el8_9",
//     "5.14.21-150500.55.39-default" as "5.14.21-150500.55.39".
package kver

import (
	"errors"
	"fmt"
	"strings"
)

// Families.
const (
	DPKG = "dpkg"
	RPM  = "rpm"
)

// Sentinel errors.
var (
	// ErrInvalid is returned for a string that is not a version.
	ErrInvalid = errors.New("invalid kernel version")
	// ErrUnknownFamily is returned when no family was given and none can be
	// told from either string.
	ErrUnknownFamily = errors.New("unknown version family")
)

// maxLen bounds the strings Compare accepts; kernel releases are at most 64
// bytes (__NEW_UTS_LEN), package versions a little longer.
const maxLen = 256

// Compare compares kernel versions a and b in the given family ("dpkg" or
// "rpm"). It returns -1 when a is older than b, 0 when they are equal, and +1
// when a is newer. An empty family is detected with Family from a, then b; if
// neither tells, Compare fails with ErrUnknownFamily.
func Compare(a, b, family string) (int, error) {
	if err := validate(a); err != nil {
		return 0, err
	}
	if err := validate(b); err != nil {
		return 0, err
	}
	if family == "" {
		family = Family(a)
		if family == "" {
			family = Family(b)
		}
	}
	switch family {
	case DPKG:
		return compareDpkg(a, b)
	case RPM:
		return compareRPM(a, b)
	case "":
		return 0, fmt.Errorf("%w: cannot tell dpkg or rpm from %q or %q; set the distro", ErrUnknownFamily, a, b)
	default:
		return 0, fmt.Errorf("%w: %q (want dpkg or rpm)", ErrUnknownFamily, family)
	}
}

func validate(v string) error {
	if v == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(v) > maxLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %q has a space, control or non-ASCII character", ErrInvalid, v)
		}
	}
	if !isDigit(v[0]) {
		return fmt.Errorf("%w: %q does not start with a digit", ErrInvalid, v)
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// splitEpoch splits "N:rest" into N and rest. An absent epoch is "0".
func splitEpoch(v string) (epoch, rest string, err error) {
	i := strings.IndexByte(v, ':')
	if i < 0 {
		return "0", v, nil
	}
	epoch, rest = v[:i], v[i+1:]
	if epoch == "" || rest == "" {
		return "", "", fmt.Errorf("%w: %q has an empty epoch or version", ErrInvalid, v)
	}
	for i := 0; i < len(epoch); i++ {
		if !isDigit(epoch[i]) {
			return "", "", fmt.Errorf("%w: epoch of %q is not a number", ErrInvalid, v)
		}
	}
	if !isDigit(rest[0]) {
		return "", "", fmt.Errorf("%w: %q: version after the epoch does not start with a digit", ErrInvalid, v)
	}
	return epoch, rest, nil
}

// cmpNumeric compares two decimal digit strings of any length.
func cmpNumeric(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return sign(strings.Compare(a, b))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
