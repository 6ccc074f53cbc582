package policy

import (
	"cmp"
	"slices"
	"time"
)

// Evaluate judges workload w under policy p with kernel state k at time now.
// It is pure and does no I/O. A nil k means the kernel state is unknown (the
// kernelStateUnknown rule applies). A nil w is denied.
//
// Verdict: deny if any violation's action is enforce, otherwise warn if any is
// warn, otherwise allow (audit violations are still listed). Rules whose input
// the front end did not see are listed in Deferred and are never a pass.
func Evaluate(p *Policy, w *Workload, k *KernelState, now time.Time) Decision {
	d := Decision{Verdict: Allow}
	if p == nil {
		return invalidDecision("no policy")
	}
	d.Policy = p.Ref()
	c := p.compiled
	if c == nil {
		var err error
		if c, err = compile(p); err != nil {
			dd := invalidDecision(err.Error())
			dd.Policy = d.Policy
			return dd
		}
	}
	if w == nil {
		dd := invalidDecision("no workload")
		dd.Policy = d.Policy
		return dd
	}

	// Which rules do the workload's exemptions lift?
	var exempt uint32
	var matched []int
	for i := range c.exemptions {
		if c.exemptions[i].matches(w) {
			exempt |= c.exemptions[i].mask
			matched = append(matched, i)
		}
	}
	applied := func(bit uint32) {
		for _, i := range matched {
			if c.exemptions[i].mask&bit != 0 && !slices.Contains(d.Exemptions, c.exemptions[i].Name) {
				d.Exemptions = append(d.Exemptions, c.exemptions[i].Name)
			}
		}
	}

	kv, behind := evaluateKernel(c, k, now)
	d.KernelBehind = behind
	for _, v := range kv {
		if bit := ruleBit(v.Rule); exempt&bit != 0 {
			applied(bit)
			continue
		}
		d.Violations = append(d.Violations, v)
	}

	for i := range containerRules {
		r := &containerRules[i]
		action := c.actions[i].at(behind)
		if action == ActionOff {
			continue
		}
		bit := uint32(1) << i
		var detail string
		var violated bool
		switch {
		case !w.Seen.Has(r.needs) && r.partial != nil:
			var deferred bool
			detail, violated, deferred = r.partial(c, w)
			if deferred && exempt&bit == 0 {
				d.Deferred = append(d.Deferred, r.id)
			}
		case !w.Seen.Has(r.needs):
			if exempt&bit == 0 {
				d.Deferred = append(d.Deferred, r.id)
			}
			continue
		default:
			detail, violated = r.check(c, w)
		}
		if !violated {
			continue
		}
		if exempt&bit != 0 {
			applied(bit)
			continue
		}
		v := Violation{Rule: r.id, Action: action, Reason: r.reason, Detail: detail}
		if normal := c.actions[i].normal; behind && stricter(action, normal) {
			v.NormalAction = normal
		}
		d.Violations = append(d.Violations, v)
	}
	markImplied(c, w, d.Violations, slices.Contains(d.Deferred, RulePrivileged))

	slices.SortFunc(d.Violations, func(a, b Violation) int { return cmp.Compare(a.Rule, b.Rule) })
	slices.Sort(d.Deferred)
	slices.Sort(d.Exemptions)
	d.Verdict = verdictOf(d.Violations)
	return d
}

// actionRank orders actions from the mildest: off, audit, warn, enforce.
func actionRank(a Action) int {
	switch a {
	case ActionAudit:
		return 1
	case ActionWarn:
		return 2
	case ActionEnforce:
		return 3
	}
	return 0
}

// stricter reports whether action a weighs more than b.
func stricter(a, b Action) bool { return actionRank(a) > actionRank(b) }

// impliedByPrivileged are the rules a privileged container fails because it
// is privileged: the runtimes give it every capability (capabilities), every
// host device and an allow-all device cgroup (hostDevices), no masked or
// read-only paths (procMount), no seccomp filter and no AppArmor profile
// (containerd's CRI and podman skip both for privileged), and Kubernetes
// refuses allowPrivilegeEscalation=false with privileged
// (privilegeEscalation). hostPathMounts is judged apart (markImplied).
var impliedByPrivileged = []string{RuleCapabilities, RuleHostDevices, RuleProcMount, RuleSeccomp, RuleAppArmor, RulePrivilegeEscalation}

// markImplied sets ImpliedBy on the violations that the privileged
// violation implies. hostPathMounts is implied only when the writable sysfs
// and cgroup mounts a privileged container gets are all it objects to: the
// rule is judged again without them, so a hostPath volume next to
// privileged still shows. Only a privileged container pays for this.
//
// Where privileged could not be judged (privDeferred: the NRI plugin sees
// no capabilities), a container that shows what privileged gives, a device
// cgroup that allows every device and writable sysfs at /sys, has its
// hostDevices and hostPathMounts findings marked too: the message then says
// privileged rather than listing a hundred devices. It is wording only; the
// violations and their actions stay.
func markImplied(c *compiled, w *Workload, vs []Violation, privDeferred bool) {
	priv, looks := false, false
	for i := range vs {
		if vs[i].Rule == RulePrivileged {
			priv = true
		}
	}
	if !priv {
		if !privDeferred || !w.DevicesAllowAll || !writableSysfs(w.Mounts) {
			return
		}
		looks = true
	}
	for i := range vs {
		v := &vs[i]
		switch {
		case looks && v.Rule != RuleHostDevices && v.Rule != RuleHostPathMounts:
		case slices.Contains(impliedByPrivileged, v.Rule):
			v.ImpliedBy = RulePrivileged
		case v.Rule == RuleHostPathMounts:
			rest := *w
			rest.Mounts = slices.DeleteFunc(slices.Clone(w.Mounts), privilegedMount)
			if _, bad := checkHostPathMounts(c, &rest); !bad {
				v.ImpliedBy = RulePrivileged
			}
		}
	}
}

// privilegedMount reports whether m is one of the writable kernel
// filesystems a privileged container gets: sysfs at /sys, cgroup at
// /sys/fs/cgroup.
func privilegedMount(m Mount) bool {
	if isBind(&m) || mountReadOnly(&m) {
		return false
	}
	switch cleanPath(m.Destination) {
	case "/sys":
		return m.Type == "sysfs"
	case "/sys/fs/cgroup":
		return m.Type == "cgroup" || m.Type == "cgroup2"
	}
	return false
}

func verdictOf(vs []Violation) Verdict {
	v := Allow
	for _, x := range vs {
		switch x.Action {
		case ActionEnforce:
			return Deny
		case ActionWarn:
			v = Warn
		}
	}
	return v
}

// invalidDecision denies when Evaluate itself cannot judge: the safe side.
func invalidDecision(why string) Decision {
	return Decision{
		Verdict:    Deny,
		Violations: []Violation{{Rule: "invalid", Action: ActionEnforce, Reason: "invalid input", Detail: why}},
	}
}

// EvaluateKernel judges only the kernel rules: the violations (sorted by rule)
// and whether the kernel is behind, which is when any kernel rule that is not
// off fails. A nil k is unknown state.
func EvaluateKernel(p *Policy, k *KernelState, now time.Time) (violations []Violation, behind bool) {
	if p == nil {
		return invalidDecision("no policy").Violations, true
	}
	c := p.compiled
	if c == nil {
		var err error
		if c, err = compile(p); err != nil {
			return invalidDecision(err.Error()).Violations, true
		}
	}
	return evaluateKernel(c, k, now)
}

func evaluateKernel(c *compiled, k *KernelState, now time.Time) ([]Violation, bool) {
	var out []Violation
	unknown, detail := stateUnknown(c, k, now)
	if c.unknownAction != ActionOff && detail != "" {
		out = append(out, Violation{Rule: RuleKernelStateUnknown, Action: c.unknownAction, Reason: kernelStateUnknownReason, Detail: detail})
	}
	if c.kernelAction != ActionOff && !unknown.all {
		for i := range kernelRules {
			r := &kernelRules[i]
			if unknown.has(r.part) {
				continue
			}
			if det, bad := r.check(c.kernel, k); bad {
				out = append(out, Violation{Rule: r.id, Action: c.kernelAction, Reason: r.reason, Detail: det})
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return cmp.Compare(a.Rule, b.Rule) })
	return out, len(out) > 0
}
