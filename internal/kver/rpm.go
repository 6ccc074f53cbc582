package kver

import (
	"fmt"
	"strings"
)

// rpmArches are the architecture suffixes of RPM kernel releases
// ("4.18.0-513.9.1.el8_9.x86_64").
var rpmArches = []string{
	".x86_64", ".aarch64", ".ppc64le", ".ppc64", ".s390x", ".i686", ".i586", ".i386",
	".armv7hl", ".armv7l", ".noarch", ".riscv64",
}

// StripRPMSuffix removes what an RPM kernel release carries beyond
// version-release: a trailing architecture with an optional "+variant"
// (".x86_64", ".x86_64+debug", ".aarch64+64k") and a SUSE flavour, that is
// trailing hyphen-separated fields that start with a letter ("-default",
// "-azure", "-rt").
func StripRPMSuffix(v string) string {
	if i := strings.LastIndexByte(v, '+'); i > 0 {
		for _, arch := range rpmArches {
			if strings.HasSuffix(v[:i], arch) {
				v = v[:i]
				break
			}
		}
	}
	for _, arch := range rpmArches {
		if strings.HasSuffix(v, arch) && len(v) > len(arch) {
			v = v[:len(v)-len(arch)]
			break
		}
	}
	for {
		i := strings.LastIndexByte(v, '-')
		if i <= 0 || i+1 >= len(v) || !isAlpha(v[i+1]) || strings.IndexByte(v[:i], '-') < 0 {
			return v
		}
		v = v[:i]
	}
}

type rpmEVR struct {
	epoch, version, release string
	hasRelease              bool
}

func parseRPM(v string) (rpmEVR, error) {
	epoch, rest, err := splitEpoch(StripRPMSuffix(v))
	if err != nil {
		return rpmEVR{}, err
	}
	e := rpmEVR{epoch: epoch, version: rest}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		e.version, e.release, e.hasRelease = rest[:i], rest[i+1:], true
		if e.version == "" || e.release == "" {
			return rpmEVR{}, fmt.Errorf("%w: %q has an empty version or release", ErrInvalid, v)
		}
	}
	return e, nil
}

// compareRPM follows rpm's rpmverCmp (rpmio/rpmver.c): epoch, then version,
// then release; a missing release is older than any release.
func compareRPM(a, b string) (int, error) {
	ea, err := parseRPM(a)
	if err != nil {
		return 0, err
	}
	eb, err := parseRPM(b)
	if err != nil {
		return 0, err
	}
	if c := cmpNumeric(ea.epoch, eb.epoch); c != 0 {
		return c, nil
	}
	if c := RPMVerCmp(ea.version, eb.version); c != 0 {
		return c, nil
	}
	switch {
	case ea.hasRelease && eb.hasRelease:
		return RPMVerCmp(ea.release, eb.release), nil
	case ea.hasRelease:
		return 1, nil
	case eb.hasRelease:
		return -1, nil
	}
	return 0, nil
}

// RPMVerCmp is rpm's rpmvercmp on one version or release string: segments
// are maximal runs of digits or of letters, separated by anything else;
// numeric segments compare numerically and are newer than alpha segments;
// '~' sorts before everything, '^' after the base version but before any
// further segment.
func RPMVerCmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	sep := func(c byte) bool { return !isAlnum(c) && c != '~' && c != '^' }
	for i < len(a) || j < len(b) {
		for i < len(a) && sep(a[i]) {
			i++
		}
		for j < len(b) && sep(b[j]) {
			j++
		}
		ai, bj := i < len(a), j < len(b)
		if (ai && a[i] == '~') || (bj && b[j] == '~') {
			if !ai || a[i] != '~' {
				return 1
			}
			if !bj || b[j] != '~' {
				return -1
			}
			i++
			j++
			continue
		}
		if (ai && a[i] == '^') || (bj && b[j] == '^') {
			if !ai {
				return -1
			}
			if !bj {
				return 1
			}
			if a[i] != '^' {
				return 1
			}
			if b[j] != '^' {
				return -1
			}
			i++
			j++
			continue
		}
		if !ai || !bj {
			break
		}
		si, sj := i, j
		isnum := isDigit(a[i])
		if isnum {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		if sj == j {
			// One numeric, the other alpha: numeric is newer.
			if isnum {
				return 1
			}
			return -1
		}
		if isnum {
			if c := cmpNumeric(a[si:i], b[sj:j]); c != 0 {
				return c
			}
		} else if c := strings.Compare(a[si:i], b[sj:j]); c != 0 {
			return sign(c)
		}
	}
	ai, bj := i < len(a), j < len(b)
	switch {
	case !ai && !bj:
		return 0
	case !ai:
		return -1
	default:
		return 1
	}
}
