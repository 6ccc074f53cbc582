package livepatch

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// Kpatch reads `kpatch list` (dynup/kpatch, kpatch/kpatch, print_patch_info
// and show_enabled_function):
//
//	Loaded patch modules:
//	<module> [enabled|disabled|enabling...|disabling...]
//	                                  (older kpatch: "<module>" alone)
//	[Stalled processes: ...]          (only while a transition stalls)
//
//	Installed patch modules:
//	<module> (<kernel release>)
//	                                  (older kpatch: "<file>.ko (<release>)")
//	[Currently livepatched functions: a `column -t` table]
type Kpatch struct{}

// Name implements Provider.
func (Kpatch) Name() string { return ProviderKpatch }

// Installed implements Provider.
func (Kpatch) Installed(env *Env) bool { return env.HasTool("kpatch") }

// KpatchModule is one line of `kpatch list`.
type KpatchModule struct {
	Name string
	// State is enabled, disabled, enabling... or disabling... (loaded only;
	// "enabled" for older kpatch that printed the name alone).
	State string
	// Kernel is the release an installed module is built for.
	Kernel string
}

// KpatchList is `kpatch list` parsed.
type KpatchList struct {
	Loaded    []KpatchModule
	Installed []KpatchModule
}

var (
	kpatchLoadedRE    = regexp.MustCompile(`^([A-Za-z0-9_.-]+)(?: \[(enabled|disabled|enabling\.\.\.|disabling\.\.\.)\])?$`)
	kpatchInstalledRE = regexp.MustCompile(`^([A-Za-z0-9_.+-]+) \(([^()\s]+)\)$`)
)

// kpatchModName turns a module file name into the module's name as the
// kernel (and sysfs) knows it: no ".ko", '-' as '_' (kpatch's mod_name).
func kpatchModName(s string) string {
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ParseKpatchList parses the output of `kpatch list`.
func ParseKpatchList(out []byte) (KpatchList, error) {
	var l KpatchList
	section := ""
	sawLoaded := false
	for i, line := range strings.Split(string(out), "\n") {
		n := i + 1
		switch line {
		case "Loaded patch modules:":
			section, sawLoaded = "loaded", true
			continue
		case "Installed patch modules:":
			section = "installed"
			continue
		case "Stalled processes:":
			section = "stalled"
			continue
		case "Currently livepatched functions:":
			section = "functions"
			continue
		case "":
			if section == "loaded" || section == "installed" {
				section = "between"
			}
			continue
		}
		switch section {
		case "loaded":
			m := kpatchLoadedRE.FindStringSubmatch(line)
			if m == nil {
				return KpatchList{}, fmt.Errorf("%w: kpatch list line %d: %q is not \"<module> [state]\"", ErrParse, n, line)
			}
			state := m[2]
			if state == "" {
				state = "enabled"
			}
			l.Loaded = append(l.Loaded, KpatchModule{Name: kpatchModName(m[1]), State: state})
		case "installed":
			m := kpatchInstalledRE.FindStringSubmatch(line)
			if m == nil {
				return KpatchList{}, fmt.Errorf("%w: kpatch list line %d: %q is not \"<module> (<kernel>)\"", ErrParse, n, line)
			}
			l.Installed = append(l.Installed, KpatchModule{Name: kpatchModName(m[1]), Kernel: m[2]})
		case "stalled", "functions":
			// Diagnostic sections: free-form.
		default:
			return KpatchList{}, fmt.Errorf("%w: kpatch list line %d: %q outside any section", ErrParse, n, line)
		}
	}
	if !sawLoaded {
		return KpatchList{}, fmt.Errorf("%w: kpatch list has no \"Loaded patch modules:\" section", ErrParse)
	}
	return l, nil
}

// Read implements Provider.
func (Kpatch) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderKpatch, Patches: []policy.Patch{}}
	args := []string{"list"}
	res, err := env.Run(ctx, "kpatch", args...)
	if err == nil && res.ExitCode != 0 {
		err = failure("kpatch", args, res)
	}
	var l KpatchList
	if err == nil {
		l, err = ParseKpatchList(res.Stdout)
	}
	if err != nil {
		r.Failed = true
		r.unknown(PartPatches, err.Error())
		r.unknown(PartUpdates, err.Error())
		return r
	}
	loaded := map[string]bool{}
	for _, m := range l.Loaded {
		loaded[m.Name] = true
		r.Patches = append(r.Patches, policy.Patch{
			Name:       m.Name,
			Enabled:    m.State == "enabled" || m.State == "enabling...",
			Transition: strings.HasSuffix(m.State, "..."),
			Provider:   ProviderKpatch,
		})
	}
	rel, relErr := readRelease(env)
	if relErr != nil {
		r.unknown(PartUpdates, relErr.Error())
		return r
	}
	pending := false
	for _, m := range l.Installed {
		if m.Kernel != rel {
			continue
		}
		r.KpatchInstalled = append(r.KpatchInstalled, m.Name)
		if !loaded[m.Name] {
			// Installed for this kernel but not loaded: an update waits.
			pending = true
		}
	}
	r.UpdatesPending = boolPtr(pending)
	return r
}
