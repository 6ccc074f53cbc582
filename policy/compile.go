package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// compiled is a policy prepared for Evaluate: actions resolved, lists turned
// into sets, paths cleaned. It is built once by Load and never changed.
type compiled struct {
	actions       []ruleAction // by containerRules index
	kernelAction  Action
	unknownAction Action
	kernel        *KernelSpec

	caps        map[string]struct{}
	hostNS      []string
	denied      []string
	allowed     []allowedPath
	runtimeDirs []string
	kubeletPods string // "<kubeletDir>/pods/"
	// kubeletPlugins: rules.hostPathMounts.kubeletVolumePlugins.
	kubeletPlugins []string
	devAllowed     []devNum
	procMasked     []string
	procReadonly   []string
	apparmorReq    bool
	// seccompMustBlock is rules.seccomp.mustBlock, sorted and unique.
	seccompMustBlock []string
	sysctlExact      map[string]struct{}
	sysctlGlobs      []string
	exemptions       []compiledExemption
}

// allowedPath is one compiled hostPathMounts.allowed entry.
type allowedPath struct {
	path     string
	readOnly bool
}

type compiledExemption struct {
	*Exemption
	mask uint32
}

func compile(p *Policy) (*compiled, error) {
	s := &p.Spec
	c := &compiled{
		kernelAction:  s.Kernel.Action,
		unknownAction: s.Kernel.OnUnknown,
		kernel:        &s.Kernel,
		caps:          map[string]struct{}{},
		sysctlExact:   map[string]struct{}{},
		hostNS:        withMountNS(s.Rules.HostNamespaces.Namespaces),
		apparmorReq:   s.Rules.AppArmor.RequireProfile,
	}
	if c.kernelAction == "" {
		c.kernelAction = orEnforce(s.DefaultAction)
	}
	if c.unknownAction == "" {
		c.unknownAction = ActionWarn
	}
	for _, r := range s.Rules.all() {
		a := ruleAction{normal: r.Action, behind: r.WhenKernelBehind}
		if a.normal == "" {
			a.normal = orEnforce(s.DefaultAction)
		}
		if a.behind == "" {
			a.behind = a.normal
		}
		c.actions = append(c.actions, a)
	}
	for _, name := range s.Rules.Capabilities.Allowed {
		c.caps[strings.TrimPrefix(strings.ToUpper(name), "CAP_")] = struct{}{}
	}
	// Paths are kept clean and with /var/run spelled /run, as the mount
	// sources they are compared with.
	for _, d := range s.Rules.HostPathMounts.Denied {
		c.denied = append(c.denied, canonRun(path.Clean(d)))
	}
	for _, a := range s.Rules.HostPathMounts.Allowed {
		c.allowed = append(c.allowed, allowedPath{path: canonRun(path.Clean(a.Path)), readOnly: a.ReadOnly})
	}
	for _, p := range s.Rules.ProcMount.MaskedPaths {
		c.procMasked = append(c.procMasked, path.Clean(p))
	}
	for _, p := range s.Rules.ProcMount.ReadonlyPaths {
		c.procReadonly = append(c.procReadonly, path.Clean(p))
	}
	for _, d := range s.Rules.HostPathMounts.RuntimeDirs {
		c.runtimeDirs = append(c.runtimeDirs, canonRun(path.Clean(d)))
	}
	if k := s.Rules.HostPathMounts.KubeletDir; k != "" {
		c.kubeletPods = canonRun(path.Clean(k)) + "/pods/"
	}
	c.kubeletPlugins = slices.Clone(s.Rules.HostPathMounts.KubeletVolumePlugins)
	for _, d := range s.Rules.HostDevices.Allowed {
		n, err := parseDevNum(d)
		if err != nil {
			return nil, fmt.Errorf("%w: rules.hostDevices.allowed: %v", ErrInvalid, err)
		}
		c.devAllowed = append(c.devAllowed, n)
	}
	c.seccompMustBlock = slices.Clone(s.Rules.Seccomp.MustBlock)
	slices.Sort(c.seccompMustBlock)
	c.seccompMustBlock = slices.Compact(c.seccompMustBlock)
	for _, name := range s.Rules.Sysctls.Allowed {
		if strings.ContainsAny(name, "*?") {
			c.sysctlGlobs = append(c.sysctlGlobs, name)
		} else {
			c.sysctlExact[name] = struct{}{}
		}
	}
	for i := range s.Exemptions {
		e := &s.Exemptions[i]
		var mask uint32
		if len(e.Rules) == 0 {
			mask = ^uint32(0)
		}
		for _, r := range e.Rules {
			b := ruleBit(r)
			if b == 0 {
				return nil, fmt.Errorf("%w: exemption %q names unknown rule %q", ErrInvalid, e.Name, r)
			}
			mask |= b
		}
		c.exemptions = append(c.exemptions, compiledExemption{Exemption: e, mask: mask})
	}
	return c, nil
}

func orEnforce(a Action) Action {
	if a == "" {
		return ActionEnforce
	}
	return a
}

// matches reports whether the exemption applies to the workload: every
// matcher that is set must match.
func (e *compiledExemption) matches(w *Workload) bool {
	if len(e.Namespaces) > 0 && !contains(e.Namespaces, w.Pod.Namespace) {
		return false
	}
	if len(e.Containers) > 0 && !contains(e.Containers, w.Container.Name) {
		return false
	}
	if len(e.Images) > 0 {
		ok := false
		for _, g := range e.Images {
			if globMatch(g, w.Container.Image) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for k, v := range e.PodLabels {
		if got, ok := w.Pod.Labels[k]; !ok || got != v {
			return false
		}
	}
	if e.Annotation != "" && w.Pod.Annotations[e.Annotation] != "true" && w.Annotations[e.Annotation] != "true" {
		return false
	}
	return true
}

// withMountNS returns the namespace types the hostNamespaces rule forbids:
// the policy's list and always "mount". A container in the host's mount
// namespace (none of its own) has runc set up its root and pivot_root in
// the host's: every host process would then see the container's files as
// its root. No container runtime shares it, so no policy may allow it.
func withMountNS(list []string) []string {
	out := append([]string(nil), list...)
	if !slices.Contains(out, "mount") {
		out = append(out, "mount")
	}
	return out
}
