package kver

import (
	"fmt"
	"strings"
)

// StripDpkgFlavour removes a Debian/Ubuntu kernel flavour: everything from
// the first hyphen-separated field after the first that starts with a letter.
// "6.1.0-18-cloud-amd64" becomes "6.1.0-18"; a package version such as
// "6.1.76-1" or "1:2.3-1ubuntu1" is returned unchanged.
func StripDpkgFlavour(v string) string {
	first := strings.IndexByte(v, '-')
	if first < 0 {
		return v
	}
	for i := first; i < len(v); i++ {
		if v[i] == '-' && i+1 < len(v) && isAlpha(v[i+1]) {
			return v[:i]
		}
	}
	return v
}

type dpkgVersion struct {
	epoch, upstream, revision string
}

func parseDpkg(v string) (dpkgVersion, error) {
	epoch, rest, err := splitEpoch(StripDpkgFlavour(v))
	if err != nil {
		return dpkgVersion{}, err
	}
	d := dpkgVersion{epoch: epoch, upstream: rest}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		d.upstream, d.revision = rest[:i], rest[i+1:]
		if d.upstream == "" || d.revision == "" {
			return dpkgVersion{}, fmt.Errorf("%w: %q has an empty upstream version or revision", ErrInvalid, v)
		}
	}
	return d, nil
}

func compareDpkg(a, b string) (int, error) {
	da, err := parseDpkg(a)
	if err != nil {
		return 0, err
	}
	db, err := parseDpkg(b)
	if err != nil {
		return 0, err
	}
	if c := cmpNumeric(da.epoch, db.epoch); c != 0 {
		return c, nil
	}
	if c := verrevcmp(da.upstream, db.upstream); c != 0 {
		return c, nil
	}
	return verrevcmp(da.revision, db.revision), nil
}

// dpkgOrder is the weight of one non-digit character in dpkg's ordering:
// '~' before the end of the string, the end before letters, letters before
// everything else.
func dpkgOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's ordering of an upstream version or a revision
// (lib/dpkg/version.c): alternating non-digit and digit runs; non-digit runs
// compare character by character with dpkgOrder, digit runs numerically.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := dpkgOrder(a, i), dpkgOrder(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := cmpNumeric(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}
