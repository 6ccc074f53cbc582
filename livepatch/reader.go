package livepatch

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// Reader reads the kernel state from the providers and merges it.
type Reader struct {
	env      Env
	provider string
	now      func() time.Time
}

// ReaderOption configures a Reader.
type ReaderOption func(*Reader) error

// WithHostRoot sets the host root (default "/").
func WithHostRoot(dir string) ReaderOption {
	return func(r *Reader) error {
		if dir == "" || !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: host root %q must be an absolute path", ErrOption, dir)
		}
		r.env.HostRoot = filepath.Clean(dir)
		return nil
	}
}

// WithTools maps tool names to host paths (spec.kernel.tools).
func WithTools(tools map[string]string) ReaderOption {
	return func(r *Reader) error {
		m := make(map[string]string, len(tools))
		for k, v := range tools {
			if !filepath.IsAbs(v) {
				return fmt.Errorf("%w: tool %q: path %q is not absolute", ErrOption, k, v)
			}
			m[k] = v
		}
		r.env.Tools = m
		return nil
	}
}

// WithProvider selects the provider: auto (default), sysfs, kpatch,
// kernelcare, canonical, ksplice or klp (spec.kernel.provider). Every choice reads
// sysfs as well; auto adds every installed tool.
func WithProvider(name string) ReaderOption {
	return func(r *Reader) error {
		if name == "" {
			name = ProviderAuto
		}
		if name != ProviderAuto && providerByName(name) == nil {
			return fmt.Errorf("%w: unknown provider %q (want auto, sysfs, kpatch, kernelcare, canonical, ksplice or klp)", ErrOption, name)
		}
		r.provider = name
		return nil
	}
}

// WithToolTimeout bounds each tool run (default 30s).
func WithToolTimeout(d time.Duration) ReaderOption {
	return func(r *Reader) error {
		if d <= 0 {
			return fmt.Errorf("%w: tool timeout %v", ErrOption, d)
		}
		r.env.Timeout = d
		return nil
	}
}

// WithChroot runs tools inside chroot(host root) when the host root is not
// "/" (see exec.go).
func WithChroot(on bool) ReaderOption {
	return func(r *Reader) error { r.env.Chroot = on; return nil }
}

// WithClock sets the clock for ObservedAt (tests).
func WithClock(now func() time.Time) ReaderOption {
	return func(r *Reader) error { r.now = now; return nil }
}

// NewReader returns a Reader.
func NewReader(opts ...ReaderOption) (*Reader, error) {
	r := &Reader{env: Env{HostRoot: "/", Timeout: defaultToolTimeout}, provider: ProviderAuto, now: time.Now}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Env returns the reader's environment (host root, tools).
func (r *Reader) Env() *Env { e := r.env; return &e }

// Provider returns the configured provider name.
func (r *Reader) Provider() string { return r.provider }

func providerByName(name string) Provider {
	switch name {
	case ProviderSysfs:
		return Sysfs{}
	case ProviderKpatch:
		return Kpatch{}
	case ProviderKernelCare:
		return KernelCare{}
	case ProviderCanonical:
		return Canonical{}
	case ProviderKsplice:
		return Ksplice{}
	case ProviderKLP:
		return KLP{}
	}
	return nil
}

// toolProviders are tried by auto, in this order.
var toolProviders = []Provider{Kpatch{}, KernelCare{}, Canonical{}, Ksplice{}, KLP{}}

// ActiveProviders lists the tool providers Read would run.
func (r *Reader) ActiveProviders() []Provider {
	switch r.provider {
	case ProviderAuto:
		var out []Provider
		for _, p := range toolProviders {
			if p.Installed(&r.env) {
				out = append(out, p)
			}
		}
		return out
	case ProviderSysfs:
		return nil
	default:
		return []Provider{providerByName(r.provider)}
	}
}

// Read reads every active provider and merges their reports. It never
// fails: what could not be read is in KernelState.Unknown.
func (r *Reader) Read(ctx context.Context) policy.KernelState {
	providers := r.ActiveProviders()
	reports := make([]Report, len(providers))
	// Providers run side by side: one hung tool costs one timeout, not
	// one per provider. Reports keep the providers' order.
	var wg sync.WaitGroup
	for i, p := range providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.provider != ProviderAuto && !p.Installed(&r.env) {
				rep := Report{Provider: p.Name(), Patches: []policy.Patch{}}
				_, _, err := r.env.LookTool(toolOf(p.Name()))
				rep.unknown(PartAll, fmt.Sprintf("spec.kernel.provider is %s but its tool is missing: %v", p.Name(), err))
				reports[i] = rep
				return
			}
			reports[i] = p.Read(ctx, &r.env)
		}()
	}
	sys := Sysfs{}.Read(ctx, &r.env)
	wg.Wait()
	return Merge(sys, reports, r.now())
}

func toolOf(provider string) string {
	switch provider {
	case ProviderKpatch:
		return "kpatch"
	case ProviderKernelCare:
		return "kcarectl"
	case ProviderCanonical:
		return "canonical-livepatch"
	case ProviderKsplice:
		return "uptrack-show"
	case ProviderKLP:
		return "klp"
	}
	return provider
}

// Merge combines the sysfs report with the tool providers' reports.
//
//   - Patches: sysfs is the kernel's own word. A tool's patch that sysfs also
//     lists is reported once, attributed to the tool (kpatch by name,
//     Canonical by the lkp_ prefix); where they disagree on enabled or
//     transition, sysfs wins and the disagreement is listed in Conflicts.
//     Patches only a tool knows (KernelCare, Ksplice) are added as the tool
//     reports them.
//   - FixedCVEs: the union, upper case, sorted.
//   - EffectiveVersion: the tools' (KernelCare, Ksplice); two different
//     values are a conflict, and the older one is kept.
//   - UpdatesPending: true if any provider says so, false if every provider
//     that can tell says no, nil if none can tell.
//   - Unknown: every provider's unknown parts.
func Merge(sys Report, tools []Report, now time.Time) policy.KernelState {
	k := policy.KernelState{
		Release:          sys.Release,
		Distro:           sys.Distro,
		LivepatchTainted: sys.Tainted,
		Patches:          []policy.Patch{},
		FixedCVEs:        []string{},
		ObservedAt:       now.UTC(),
	}
	k.Unknown = append(k.Unknown, sys.Unknown...)
	k.Conflicts = append(k.Conflicts, sys.Conflicts...)
	sysReadable := !hasUnknown(sys, PartPatches)
	if sysReadable {
		k.Providers = append(k.Providers, ProviderSysfs)
	}

	byName := map[string]int{}
	for _, p := range sys.Patches {
		if isCanonicalModule(p.Name) {
			// Canonical Livepatch names its modules lkp_<Distro>_<release>_<n>.
			p.Provider = ProviderCanonical
		}
		byName[p.Name] = len(k.Patches)
		k.Patches = append(k.Patches, p)
	}

	var cves []string
	var pendingKnown, pending bool
	effective, effectiveFrom := "", ""
	for _, t := range tools {
		k.Unknown = append(k.Unknown, t.Unknown...)
		k.Conflicts = append(k.Conflicts, t.Conflicts...)
		if !t.Failed && !hasUnknown(t, PartAll) {
			k.Providers = append(k.Providers, t.Provider)
		}
		cves = append(cves, t.FixedCVEs...)
		if t.UpdatesPending != nil {
			pendingKnown = true
			pending = pending || *t.UpdatesPending
		}
		if t.EffectiveVersion != "" {
			switch {
			case effective == "":
				effective, effectiveFrom = t.EffectiveVersion, t.Provider
			case effective != t.EffectiveVersion:
				k.Conflicts = append(k.Conflicts, fmt.Sprintf("effective version: %s says %q, %s says %q", effectiveFrom, effective, t.Provider, t.EffectiveVersion))
				if older(t.EffectiveVersion, effective, sys.Distro) {
					effective, effectiveFrom = t.EffectiveVersion, t.Provider
				}
			}
		}
		switch t.Provider {
		case ProviderKpatch:
			mergeKpatch(&k, byName, t, sysReadable, sys.LivepatchSupported)
		case ProviderCanonical:
			mergeCanonical(&k, t, sysReadable)
		case ProviderKLP:
			mergeKLP(&k, t, sysReadable)
		default:
			for _, p := range t.Patches {
				if i, ok := byName[p.Name]; ok {
					k.Patches[i].Provider = t.Provider
					continue
				}
				byName[p.Name] = len(k.Patches)
				k.Patches = append(k.Patches, p)
			}
		}
	}
	k.EffectiveVersion = effective
	if pendingKnown {
		k.UpdatesPending = boolPtr(pending)
	}
	k.FixedCVEs = sortedUnique(cves)
	sort.SliceStable(k.Patches, func(i, j int) bool { return k.Patches[i].Name < k.Patches[j].Name })
	if len(k.Providers) == 0 {
		k.Unknown = append(k.Unknown, policy.UnknownPart{Part: PartAll, Reason: "no provider could be read"})
	}
	return k
}

func hasUnknown(r Report, part string) bool {
	for _, u := range r.Unknown {
		if u.Part == part {
			return true
		}
	}
	return false
}

// older reports whether a is older than b; incomparable counts as not older.
func older(a, b, family string) bool {
	c, err := compareVersions(a, b, family)
	return err == nil && c < 0
}

func mergeKpatch(k *policy.KernelState, byName map[string]int, t Report, sysReadable, sysSupported bool) {
	for _, p := range t.Patches {
		i, ok := byName[p.Name]
		if !ok {
			if sysReadable && sysSupported {
				k.Conflicts = append(k.Conflicts, fmt.Sprintf("kpatch lists %q as loaded but /sys/kernel/livepatch has no such patch", p.Name))
			}
			byName[p.Name] = len(k.Patches)
			k.Patches = append(k.Patches, p)
			continue
		}
		s := k.Patches[i]
		if s.Enabled != p.Enabled || s.Transition != p.Transition {
			k.Conflicts = append(k.Conflicts, fmt.Sprintf("patch %q: kpatch says enabled=%t transition=%t, sysfs says enabled=%t transition=%t (sysfs kept)", p.Name, p.Enabled, p.Transition, s.Enabled, s.Transition))
		}
		k.Patches[i].Provider = ProviderKpatch
	}
}

func mergeCanonical(k *policy.KernelState, t Report, sysReadable bool) {
	inForce := 0
	for i, p := range k.Patches {
		if isCanonicalModule(p.Name) {
			k.Patches[i].Provider = ProviderCanonical
			if p.InForce() {
				inForce++
			}
		}
	}
	if hasUnknown(t, PartPatches) || !sysReadable {
		return
	}
	switch {
	case t.CanonicalState == "applied" && inForce == 0:
		k.Conflicts = append(k.Conflicts, "canonical-livepatch says applied but no lkp_ patch is in force in /sys/kernel/livepatch")
	case t.CanonicalState != "applied" && t.CanonicalState != "applying" && inForce > 0:
		k.Conflicts = append(k.Conflicts, fmt.Sprintf("canonical-livepatch says %q but %d lkp_ patch(es) are in force in /sys/kernel/livepatch", t.CanonicalState, inForce))
	}
}

func mergeKLP(k *policy.KernelState, t Report, sysReadable bool) {
	if t.KlpStatus == "" || !sysReadable {
		return
	}
	inTransition := 0
	for _, p := range k.Patches {
		if p.Transition {
			inTransition++
		}
	}
	switch {
	case t.KlpStatus == "in_progress" && inTransition == 0:
		k.Conflicts = append(k.Conflicts, "klp status says in_progress but no patch in /sys/kernel/livepatch is in transition")
	case t.KlpStatus == "ready" && inTransition > 0:
		k.Conflicts = append(k.Conflicts, fmt.Sprintf("klp status says ready but %d patch(es) in /sys/kernel/livepatch are in transition", inTransition))
	}
}
