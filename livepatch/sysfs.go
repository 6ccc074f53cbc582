package livepatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/patchgate/patchgate/internal/kver"
	"github.com/patchgate/patchgate/policy"
)

// Sysfs reads the kernel's own live-patch state (Documentation/livepatch/
// livepatch.rst, "Sysfs" and ABI testing/sysfs-kernel-livepatch):
//
//	/sys/kernel/livepatch/<patch>/enabled       1 or 0
//	/sys/kernel/livepatch/<patch>/transition    1 while (un)patching
//	/sys/kernel/livepatch/<patch>/replace       1 for a cumulative patch (5.x+)
//	/sys/kernel/livepatch/<patch>/stack_order   position in the stack (6.6+)
//	/sys/kernel/livepatch/<patch>/<object>/patched   1 once the object is patched
//	/proc/sys/kernel/tainted                    bit 15 (K, 32768): a live patch was loaded
//	/proc/sys/kernel/osrelease                  the running release
//	/proc/version, /proc/version_signature      (Ubuntu) the running kernel
//
// The directory exists, maybe empty, whenever CONFIG_LIVEPATCH=y; a kernel
// without it has no live patches, which is a fact, not an unknown. Files that
// are write-only (force, signal) are never read. A patch whose directory
// disappears while it is read (a finished unpatch) is skipped. Kernels before
// 6.6 have no stack_order, and before 5.1 no replace; they are optional.
type Sysfs struct{}

// Name implements Provider.
func (Sysfs) Name() string { return ProviderSysfs }

// Installed implements Provider: sysfs needs no tool.
func (Sysfs) Installed(*Env) bool { return true }

const taintLivepatch = 1 << 15

// Read implements Provider.
func (Sysfs) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderSysfs, Patches: []policy.Patch{}, Objects: map[string]map[string]bool{}}

	rel, err := readRelease(env)
	if err != nil {
		r.unknown(PartVersion, err.Error())
	}
	r.Release = rel
	r.Distro = DistroFamily(env, rel)

	if b, err := env.ReadFile("/proc/sys/kernel/tainted"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			r.Tainted = v&taintLivepatch != 0
		}
	}

	dir := env.Path("/sys/kernel/livepatch")
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No CONFIG_LIVEPATCH (or sysfs not mounted: then /sys/kernel is
		// missing too, which is not "no support").
		if _, kerr := os.Stat(env.Path("/sys/kernel")); kerr != nil {
			r.unknown(PartPatches, fmt.Sprintf("sysfs is not mounted under %s: %v", env.Path("/sys"), kerr))
		}
		return r
	case err != nil:
		r.unknown(PartPatches, fmt.Sprintf("cannot read %s: %v", dir, err))
		return r
	}
	r.LivepatchSupported = true
	for _, e := range entries {
		if ctx.Err() != nil {
			r.unknown(PartPatches, ctx.Err().Error())
			return r
		}
		p, objs, gone, err := readSysfsPatch(dir+"/"+e.Name(), e.Name())
		if gone {
			continue
		}
		if err != nil {
			r.unknown(PartPatches, err.Error())
			continue
		}
		r.Patches = append(r.Patches, p)
		r.Objects[p.Name] = objs
		if p.Enabled && !p.Transition {
			if patched, ok := objs["vmlinux"]; ok && !patched {
				r.Conflicts = append(r.Conflicts, fmt.Sprintf("sysfs: patch %q is enabled and not in transition but vmlinux/patched is 0", p.Name))
			}
		}
	}
	sort.Slice(r.Patches, func(i, j int) bool { return r.Patches[i].Name < r.Patches[j].Name })
	return r
}

// readSysfsPatch reads one /sys/kernel/livepatch/<patch> directory. gone is
// set when the directory vanished (the patch finished unloading).
func readSysfsPatch(dir, name string) (p policy.Patch, objects map[string]bool, gone bool, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil, true, nil
	}
	if err != nil {
		return p, nil, false, fmt.Errorf("patch %q: %v", name, err)
	}
	if !fi.IsDir() {
		return p, nil, true, nil
	}
	p = policy.Patch{Name: name, Provider: ProviderSysfs}
	enabled, err := readFlag(dir + "/enabled")
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return p, nil, true, nil
		}
	}
	if err != nil {
		return p, nil, false, fmt.Errorf("patch %q: enabled: %v", name, err)
	}
	p.Enabled = enabled
	transition, err := readFlag(dir + "/transition")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Kernels before 4.12 had no consistency model: no transition.
	case err != nil:
		return p, nil, false, fmt.Errorf("patch %q: transition: %v", name, err)
	default:
		p.Transition = transition
	}
	objects = map[string]bool{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil, true, nil
		}
		return p, nil, false, fmt.Errorf("patch %q: %v", name, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		patched, err := readFlag(dir + "/" + e.Name() + "/patched")
		if err != nil {
			// Not an object directory (or it went away): ignore.
			continue
		}
		objects[e.Name()] = patched
	}
	return p, objects, false, nil
}

// readFlag reads a sysfs file holding "0" or "1".
func readFlag(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	v, err := parseFlag(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// parseFlag parses a sysfs flag: "0" or "1" and a newline.
func parseFlag(b []byte) (bool, error) {
	switch strings.TrimSpace(string(b)) {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: %q, want 0 or 1", ErrParse, strings.TrimSpace(string(b)))
}

// readRelease reads the running kernel release: /proc/sys/kernel/osrelease,
// else the third field of /proc/version ("Linux version <release> (...").
func readRelease(env *Env) (string, error) {
	b, err := env.ReadFile("/proc/sys/kernel/osrelease")
	if err == nil {
		if rel := strings.TrimSpace(string(b)); rel != "" {
			return rel, nil
		}
	}
	v, verr := env.ReadFile("/proc/version")
	if verr == nil {
		if rel, perr := ParseProcVersion(v); perr == nil {
			return rel, nil
		}
	}
	return "", fmt.Errorf("cannot read the kernel release from %s or %s: %v", env.Path("/proc/sys/kernel/osrelease"), env.Path("/proc/version"), err)
}

// ParseProcVersion returns the release from /proc/version ("Linux version
// 6.1.0-18-amd64 (debian-kernel@lists.debian.org) ...").
func ParseProcVersion(b []byte) (string, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 || f[0] != "Linux" || f[1] != "version" {
		return "", fmt.Errorf("%w: /proc/version does not start with \"Linux version\"", ErrParse)
	}
	return f[2], nil
}

// DistroFamily tells the version ordering of the host: from /etc/os-release
// (or /usr/lib/os-release) under the host root, from /proc/version_signature
// (Ubuntu), and failing those from the release string.
func DistroFamily(env *Env, release string) string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := env.ReadFile(p)
		if err != nil {
			continue
		}
		if f := FamilyFromOSRelease(b); f != "" {
			return f
		}
	}
	if b, err := env.ReadFile("/proc/version_signature"); err == nil && strings.HasPrefix(string(b), "Ubuntu ") {
		return kver.DPKG
	}
	return kver.Family(release)
}

// FamilyFromOSRelease reads ID and ID_LIKE of an os-release file.
func FamilyFromOSRelease(b []byte) string {
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (k != "ID" && k != "ID_LIKE") {
			continue
		}
		v = strings.Trim(v, `"'`)
		ids = append(ids, strings.Fields(strings.ToLower(v))...)
	}
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return kver.DPKG
		case "rhel", "fedora", "centos", "almalinux", "rocky", "ol", "amzn", "suse", "sles", "opensuse", "opensuse-leap", "sled", "mariner", "azurelinux":
			return kver.RPM
		}
	}
	return ""
}
