package kver

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

var (
	// rpmTag matches the distro tags of RPM kernel releases: el8_9, el9uek,
	// fc39, amzn2, amzn2023, an8 (Anolis), oc8 (OpenCloudOS).
	rpmTag = regexp.MustCompile(`\.(el[0-9]+|fc[0-9]+|amzn[0-9]+|an[0-9]+|oc[0-9]+|ph[0-9]+)`)
	// suseRelease is SUSE's "5.14.21-150500.55.39-default": a release of at
	// least three dotted numbers followed by a flavour.
	suseRelease = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)*-[a-z][a-z0-9]*$`)
	// debRelease is Debian's and Ubuntu's "<upstream>-<abi>[.<upload>][~<backport>]-<flavour>"
	// ("6.1.0-18-amd64", "5.15.0-91-generic", "6.1.0-0.deb11.17-amd64",
	// "5.15.0-91.101~20.04.1-generic").
	debRelease = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?-[0-9]+(\.[0-9]+)?(\.deb[0-9]+\.[0-9]+)?(~[0-9A-Za-z.+]+)?-[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
)

// Family tells the version ordering from a kernel release string: "rpm" for
// RHEL-like, Fedora, Amazon Linux, Oracle UEK and SUSE releases, "dpkg" for
// Debian and Ubuntu ones, and "" when the string does not say. Detection
// from /etc/os-release is in package livepatch.
func Family(release string) string {
	if f, ok := familyCache.Load(release); ok {
		return f.(string)
	}
	f := family(release)
	// A node sees a handful of release strings; remember them, boundedly,
	// so the request path does not run the regular expressions each time.
	if familyCacheSize.Add(1) <= maxFamilyCache {
		familyCache.Store(release, f)
	}
	return f
}

var (
	familyCache     sync.Map
	familyCacheSize atomic.Int64
)

const maxFamilyCache = 1024

func family(release string) string {
	r := strings.TrimSpace(release)
	if r == "" {
		return ""
	}
	if rpmTag.MatchString(r) || suseRelease.MatchString(r) {
		return RPM
	}
	for _, arch := range rpmArches {
		if strings.HasSuffix(r, arch) || strings.Contains(r, arch+"+") {
			return RPM
		}
	}
	if debRelease.MatchString(r) || strings.Contains(r, "ubuntu") || strings.Contains(r, ".deb") {
		return DPKG
	}
	return ""
}
