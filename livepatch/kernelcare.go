package livepatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// KernelCare reads TuxCare KernelCare (docs.tuxcare.com, "Live Patching
// Services"; kcarectl):
//
//	kcarectl --info        "kpatch-state: patch is applied" and
//	                       "kpatch-description: <level>;<effective version>"
//	kcarectl --uname       the effective ("safe") kernel version
//	kcarectl --patch-info  blocks of "kpatch-name:", "kpatch-cve:" lines
//	kcarectl --check       exit 0: a new patchset is available; 1: none
//	/proc/kcare/effective_version   the effective kernel, in place of /proc/version
//	/proc/kcare/cvelist             fixed CVEs, one per line
//
// KernelCare does not use the livepatch sysfs; its patches show up as one
// patch named "kernelcare".
type KernelCare struct{}

// KernelCarePatchName is the patch name KernelCare's patchset is reported as.
const KernelCarePatchName = "kernelcare"

// Name implements Provider.
func (KernelCare) Name() string { return ProviderKernelCare }

// Installed implements Provider.
func (KernelCare) Installed(env *Env) bool { return env.HasTool("kcarectl") }

// KcareInfo is `kcarectl --info` parsed.
type KcareInfo struct {
	// State is kpatch-state ("patch is applied").
	State string
	// Level is the patch level (before ';' in kpatch-description).
	Level string
	// EffectiveVersion is after ';' in kpatch-description.
	EffectiveVersion string
	// For is kpatch-for (the /proc/version line of the patched kernel).
	For string
}

// Applied reports whether KernelCare's patchset is in force.
func (i KcareInfo) Applied() bool { return i.State == "patch is applied" }

// parseKeyLines parses "key: value" lines; blank (or single-space) lines are
// separators and are returned as empty keys.
func parseKeyLines(out []byte, tool string) ([][2]string, error) {
	var kv [][2]string
	for i, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			kv = append(kv, [2]string{"", ""})
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%w: %s line %d: %q is not \"key: value\"", ErrParse, tool, i+1, line)
		}
		kv = append(kv, [2]string{k, strings.TrimSpace(v)})
	}
	return kv, nil
}

// ParseKcareInfo parses `kcarectl --info`.
func ParseKcareInfo(out []byte) (KcareInfo, error) {
	kv, err := parseKeyLines(out, "kcarectl --info")
	if err != nil {
		return KcareInfo{}, err
	}
	var info KcareInfo
	seen := false
	for _, p := range kv {
		switch p[0] {
		case "kpatch-state":
			info.State, seen = p[1], true
		case "kpatch-for":
			info.For = p[1]
		case "kpatch-description":
			level, eff, ok := strings.Cut(p[1], ";")
			if ok {
				info.Level, info.EffectiveVersion = level, strings.TrimSpace(eff)
			}
		}
	}
	if !seen {
		return KcareInfo{}, fmt.Errorf("%w: kcarectl --info has no kpatch-state line", ErrParse)
	}
	return info, nil
}

// KcarePatch is one block of `kcarectl --patch-info`.
type KcarePatch struct {
	Name string
	CVEs []string
}

// KcarePatchInfo is `kcarectl --patch-info` parsed.
type KcarePatchInfo struct {
	// Uname is the "uname:" header line (the effective version).
	Uname   string
	Patches []KcarePatch
}

// ParseKcarePatchInfo parses `kcarectl --patch-info`: a header of "OS:",
// "kernel:", "time:", "uname:" lines, then blocks separated by lines holding
// a single space, each starting with "kpatch-name:".
func ParseKcarePatchInfo(out []byte) (KcarePatchInfo, error) {
	kv, err := parseKeyLines(out, "kcarectl --patch-info")
	if err != nil {
		return KcarePatchInfo{}, err
	}
	var pi KcarePatchInfo
	var cur *KcarePatch
	for _, p := range kv {
		switch p[0] {
		case "":
			cur = nil
		case "uname":
			pi.Uname = p[1]
		case "kpatch-name":
			pi.Patches = append(pi.Patches, KcarePatch{Name: p[1]})
			cur = &pi.Patches[len(pi.Patches)-1]
		case "kpatch-cve":
			if cur == nil {
				return KcarePatchInfo{}, fmt.Errorf("%w: kcarectl --patch-info: kpatch-cve %q outside a kpatch-name block", ErrParse, p[1])
			}
			cur.CVEs = append(cur.CVEs, CVEs(p[1])...)
		}
	}
	return pi, nil
}

// ParseKcareEffectiveVersion reads /proc/kcare/effective_version or the
// output of `kcarectl --uname`: either a bare release, or a /proc/version
// style line ("Linux version <release> ...").
func ParseKcareEffectiveVersion(b []byte) (string, error) {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "Linux version ") {
		return ParseProcVersion(b)
	}
	f := strings.Fields(s)
	if len(f) != 1 {
		return "", fmt.Errorf("%w: effective version %q is not one release", ErrParse, s)
	}
	return f[0], nil
}

// Read implements Provider.
func (KernelCare) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderKernelCare, Patches: []policy.Patch{}}

	// Patches: --info.
	infoArgs := []string{"--info"}
	res, err := env.Run(ctx, "kcarectl", infoArgs...)
	if err == nil && res.ExitCode != 0 {
		err = failure("kcarectl", infoArgs, res)
	}
	var info KcareInfo
	if err == nil {
		info, err = ParseKcareInfo(res.Stdout)
	}
	if err != nil {
		r.Failed = true
		r.unknown(PartPatches, err.Error())
	} else {
		r.Patches = append(r.Patches, policy.Patch{Name: KernelCarePatchName, Enabled: info.Applied(), Provider: ProviderKernelCare})
	}

	// The effective version and the fixed CVEs are KernelCare's only while
	// its patchset is applied: a downloaded-but-unloaded or failed patchset
	// fixes nothing, and an unreadable --info cannot say.
	switch {
	case err != nil:
		r.unknown(PartVersion, "kcarectl --info unreadable: "+err.Error())
		r.unknown(PartCVEs, "kcarectl --info unreadable: "+err.Error())
	case !info.Applied():
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("kcarectl --info kpatch-state %q: KernelCare's patchset is not applied, its CVEs and effective version are not counted", info.State))
	default:
		readKcareFixes(ctx, env, &r, info)
	}
	r.FixedCVEs = sortedUnique(r.FixedCVEs)
	if r.FixedCVEs == nil {
		r.FixedCVEs = []string{}
	}

	// Updates: --check exits 0 when a newer patchset is available.
	checkArgs := []string{"--check"}
	res, err = env.Run(ctx, "kcarectl", checkArgs...)
	switch {
	case err != nil:
		r.unknown(PartUpdates, err.Error())
	case res.ExitCode == 0:
		r.UpdatesPending = boolPtr(true)
	case res.ExitCode == 1:
		r.UpdatesPending = boolPtr(false)
	default:
		r.unknown(PartUpdates, failure("kcarectl", checkArgs, res).Error())
	}
	return r
}

// readKcareFixes reads the effective version and the fixed CVEs of an
// applied patchset into r.
func readKcareFixes(ctx context.Context, env *Env, r *Report, info KcareInfo) {
	// Effective version: /proc/kcare/effective_version, else --uname, else
	// --info's description.
	var effErr error
	if b, err := env.ReadFile("/proc/kcare/effective_version"); err == nil {
		r.EffectiveVersion, effErr = ParseKcareEffectiveVersion(b)
	} else {
		unameArgs := []string{"--uname"}
		res, err := env.Run(ctx, "kcarectl", unameArgs...)
		if err == nil && res.ExitCode != 0 {
			err = failure("kcarectl", unameArgs, res)
		}
		if err == nil {
			r.EffectiveVersion, effErr = ParseKcareEffectiveVersion(res.Stdout)
		} else {
			effErr = err
		}
	}
	if effErr != nil && info.EffectiveVersion != "" {
		r.EffectiveVersion, effErr = info.EffectiveVersion, nil
	}
	if effErr != nil {
		r.unknown(PartVersion, effErr.Error())
	}

	// CVEs: --patch-info and /proc/kcare/cvelist.
	var cves []string
	var cveErrs []string
	cvelistRead := false
	if b, err := env.ReadFile("/proc/kcare/cvelist"); err == nil {
		cvelistRead = true
		cves = append(cves, CVEs(string(b))...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		cveErrs = append(cveErrs, err.Error())
	}
	piArgs := []string{"--patch-info"}
	res, err := env.Run(ctx, "kcarectl", piArgs...)
	if err == nil && res.ExitCode != 0 {
		err = failure("kcarectl", piArgs, res)
	}
	var pi KcarePatchInfo
	if err == nil {
		pi, err = ParseKcarePatchInfo(res.Stdout)
	}
	if err != nil {
		cveErrs = append(cveErrs, err.Error())
	} else {
		for _, p := range pi.Patches {
			cves = append(cves, p.CVEs...)
		}
	}
	if err != nil && !cvelistRead {
		r.unknown(PartCVEs, strings.Join(cveErrs, "; "))
	}
	r.FixedCVEs = cves
}
