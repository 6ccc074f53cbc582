// Package livepatch reads the host kernel's live-patch state from the real
// providers and keeps it current for the request path.
//
// One provider per file, each behind the Provider interface:
//
//   - sysfs (sysfs.go): the kernel's own /sys/kernel/livepatch, taint bit 15,
//     /proc/sys/kernel/osrelease, /proc/version(_signature). It needs no tool
//     and is read on every node.
//   - kpatch (kpatch.go): `kpatch list`.
//   - KernelCare (kernelcare.go): `kcarectl --info/--uname/--patch-info/--check`,
//     /proc/kcare/effective_version and /proc/kcare/cvelist.
//   - Canonical Livepatch (canonical.go): `canonical-livepatch status --verbose
//     --format json`, and the older YAML form.
//   - Ksplice (ksplice.go): `uptrack-show`, `uptrack-show --available`.
//   - SUSE klp (klp.go): `klp status`, cross-checked with sysfs.
//
// Reader merges what they report into one policy.KernelState (reader.go).
// A provider that fails makes its part of the state unknown, never empty.
// Monitor (monitor.go) refreshes that state in the background and hands out
// snapshots without I/O; Remediator (remediate.go) starts an update.
//
// Everything reads under a host root (default "/"), so tests run against
// fixture trees and a DaemonSet can read the node through a hostPath mount.
// Tools are run with exec.CommandContext and an argv, with a timeout, never
// through a shell. See exec.go for how tools are found and run when the host
// root is not "/".
package livepatch

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/patchgate/patchgate/internal/kver"
	"github.com/patchgate/patchgate/policy"
)

// Provider names, as in the policy's spec.kernel.provider.
const (
	ProviderAuto       = "auto"
	ProviderSysfs      = "sysfs"
	ProviderKpatch     = "kpatch"
	ProviderKernelCare = "kernelcare"
	ProviderCanonical  = "canonical"
	ProviderKsplice    = "ksplice"
)

// Unknown parts, as in policy.UnknownPart.Part.
const (
	PartAll     = "all"
	PartPatches = "patches"
	PartCVEs    = "cves"
	PartVersion = "version"
	PartUpdates = "updates"
)

// Sentinel errors.
var (
	// ErrToolNotFound: the provider's tool is not installed under the host root.
	ErrToolNotFound = errors.New("tool not found")
	// ErrToolFailed: the tool ran but failed or timed out.
	ErrToolFailed = errors.New("tool failed")
	// ErrInsecureTool: the tool file is writable by group or others.
	ErrInsecureTool = errors.New("insecure tool")
	// ErrParse: a provider's output is not in the format the tool prints.
	ErrParse = errors.New("unrecognised provider output")
	// ErrOption: a bad option to New*.
	ErrOption = errors.New("invalid option")
)

// Provider reads one source of live-patch state.
type Provider interface {
	// Name is the provider's name ("sysfs", "kpatch", ...).
	Name() string
	// Installed reports whether the provider's tool is present under the
	// host root (sysfs: always).
	Installed(env *Env) bool
	// Read reads the provider's state. It never fails as a whole: what it
	// cannot read is listed in Report.Unknown.
	Read(ctx context.Context, env *Env) Report
}

// Report is what one provider says.
type Report struct {
	Provider string
	// Patches are the live patches the provider lists.
	Patches []policy.Patch
	// FixedCVEs are CVE IDs in upper case.
	FixedCVEs []string
	// EffectiveVersion is the version the kernel is patched up to, when the
	// provider states one.
	EffectiveVersion string
	// UpdatesPending is nil when the provider cannot tell.
	UpdatesPending *bool
	// Unknown lists what could not be read.
	Unknown []policy.UnknownPart
	// Conflicts are disagreements found inside one provider's sources.
	Conflicts []string
	// Failed is set when the provider's main command could not be run or
	// read; the provider is then not listed in KernelState.Providers.
	Failed bool

	// sysfs only.
	Release string
	Distro  string
	Tainted bool
	// LivepatchSupported is false when /sys/kernel/livepatch does not exist.
	LivepatchSupported bool
	// Objects maps a sysfs patch name to its objects' patched flags.
	Objects map[string]map[string]bool

	// Canonical only: Livepatch.State and Supported as the client says.
	CanonicalState     string
	CanonicalSupported string
	// klp only: `klp status` ("ready" or "in_progress").
	KlpStatus string
	// kpatch only: patch modules installed for the running kernel.
	KpatchInstalled []string
}

func (r *Report) unknown(part, reason string) {
	r.Unknown = append(r.Unknown, policy.UnknownPart{Part: part, Provider: r.Provider, Reason: reason})
}

var cveRE = regexp.MustCompile(`(?i)\bCVE-[0-9]{4}-[0-9]{4,}\b`)

// CVEs returns the CVE IDs in s, upper case, in order of appearance.
func CVEs(s string) []string {
	found := cveRE.FindAllString(s, -1)
	for i := range found {
		found[i] = strings.ToUpper(found[i])
	}
	return found
}

// sortedUnique returns the sorted distinct strings of in.
func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return []string{}
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || s != out[n-1] {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

func boolPtr(b bool) *bool { return &b }

func compareVersions(a, b, family string) (int, error) { return kver.Compare(a, b, family) }
