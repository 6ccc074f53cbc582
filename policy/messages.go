package policy

import (
	"slices"
	"strconv"
	"strings"
)

// subject names the container in a violation detail: `container "web"`.
func subject(w *Workload) string {
	name := w.Container.Name
	if name == "" {
		name = w.Container.ID
	}
	if name == "" {
		return "the container"
	}
	return "container " + strconv.Quote(name)
}

// quoteList quotes and joins already sorted items: "a", "b".
func quoteList(items []string) string {
	var b strings.Builder
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s))
	}
	return b.String()
}

// origin is what made the container, as far as the annotations its runtime
// wrote tell. It picks the words of a message (a pod's securityContext
// field, a podman flag) and never weighs in a decision: a pod can set
// annotations, and that only changes how patchgate explains itself.
type origin int

const (
	// originOCI: plain runc, ctr, or a runtime patchgate does not know;
	// messages name the OCI field only.
	originOCI origin = iota
	// originKubernetes: a pod, created through containerd's or CRI-O's CRI.
	originKubernetes
	// originPodman: podman (its containers carry io.container.manager=libpod).
	originPodman
)

// Annotation keys the runtimes write into a container's spec (hook/identity.go
// cites their sources): containerd's CRI container type, CRI-O's, and the
// container manager CRI-O ("cri-o") and podman ("libpod") set.
const (
	annotationCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	annotationContainerManager  = "io.container.manager"
)

// originOf tells where w came from: podman by its manager annotation (podman
// --pod also writes CRI-O's container type), a pod by the CRI annotations
// containerd or CRI-O put on the container or its sandbox, or by a pod name
// and namespace the front end was given (eval --pod); anything else is a
// plain OCI container.
func originOf(w *Workload) origin {
	switch w.Annotations[annotationContainerManager] {
	case "libpod":
		return originPodman
	case "cri-o":
		return originKubernetes
	}
	for _, ann := range []map[string]string{w.Annotations, w.Pod.Annotations} {
		if ann[AnnotationContainerType] != "" || ann[annotationCRIOContainerType] != "" {
			return originKubernetes
		}
	}
	if w.Pod.Name != "" && w.Pod.Namespace != "" {
		return originKubernetes
	}
	return originOCI
}

// fixFor phrases a rule's fix for an origin: "Kubernetes: ..." for a pod,
// "podman: ..." for podman, "" for a plain OCI container (the detail names
// the OCI field already) or when the tool has no such setting.
func fixFor(o origin, kubernetes, podman string) string {
	switch {
	case o == originKubernetes && kubernetes != "":
		return "Kubernetes: " + kubernetes
	case o == originPodman && podman != "":
		return "podman: " + podman
	}
	return ""
}

// maxExplainedDetail bounds one violation's detail in a message: runtimes
// put the message into one error string. The audit record keeps it whole.
const maxExplainedDetail = 1000

// Explain is the one line for people about the violations of d with the
// given action (enforce for a refusal, warn for a flag), the text a front
// end puts after its own "patchgate: denied ..." prefix. For each violation
// it names the rule, the detail (which names the OCI field) and what to
// change where the container came from (a pod's field, a podman flag).
// Violations that privileged implies are folded into it by rule ID: their
// details stay in the decision and the audit record. When the kernel being
// behind made a rule stricter (Violation.NormalAction), or a kernel rule is
// among the violations, it ends with the kernel's cause (the kernel rules'
// findings) and what would admit the container. w may be nil.
func Explain(d *Decision, w *Workload, action Action) string {
	if d == nil {
		return "no decision"
	}
	o := originOCI
	if w != nil {
		o = originOf(w)
	}
	var parts, folded, looks, strict []string
	kernelListed := false
	looksAt := -1
	for _, v := range d.Violations {
		if v.Action != action {
			continue
		}
		if v.ImpliedBy == RulePrivileged {
			if hasRule(d.Violations, RulePrivileged, action) {
				folded = append(folded, v.Rule)
			} else {
				// Privileged not judged here (NRI): one item for all.
				if looksAt < 0 {
					looksAt = len(parts)
					parts = append(parts, "")
				}
				looks = append(looks, v.Rule)
			}
			if v.NormalAction != "" && !hasRule(d.Violations, RulePrivileged, action) {
				// Folded into privileged, whose own weight is what
				// decides; where privileged is not judged, these are.
				strict = append(strict, v.Rule+" is "+string(v.NormalAction))
			}
			continue
		}
		if v.NormalAction != "" {
			strict = append(strict, v.Rule+" is "+string(v.NormalAction))
		}
		if isKernelRule(v.Rule) {
			kernelListed = true
		}
		parts = append(parts, explainOne(&v, w, o))
	}
	if len(parts) == 0 {
		return "no violation listed"
	}
	if len(folded) > 0 {
		// Sorted already: d.Violations is sorted by rule.
		i := slices.IndexFunc(parts, func(s string) bool { return strings.HasPrefix(s, "["+RulePrivileged+"]") })
		parts[i] += "; privileged also fails " + plural(len(folded), "rule ", "rules ") + strings.Join(folded, ", ") +
			" (details in the audit record)"
	}
	if looksAt >= 0 {
		who := "the container"
		if w != nil {
			who = subject(w)
		}
		s := "[" + strings.Join(looks, ",") + "] " + who + " has what privileged gives: a device cgroup that allows every device and writable sysfs at /sys (linux.resources.devices, mounts; details in the audit record)"
		if w != nil {
			if fix := fixPrivileged(w, nil, o); fix != "" {
				s += "; " + fix
			}
		}
		parts[looksAt] = s
	}
	line := strings.Join(parts, "; ")
	if k := explainKernel(d, action, strict, kernelListed); k != "" {
		line += "; " + k
	}
	return line
}

// hasRule reports whether vs holds a violation of rule id with action.
func hasRule(vs []Violation, id string, action Action) bool {
	for _, v := range vs {
		if v.Rule == id && v.Action == action {
			return true
		}
	}
	return false
}

// explainOne is "[rule] detail; fix" for one violation.
func explainOne(v *Violation, w *Workload, o origin) string {
	detail := v.Detail
	if len(detail) > maxExplainedDetail {
		detail = strings.ToValidUTF8(detail[:maxExplainedDetail], "") + "…"
	}
	s := "[" + v.Rule + "] " + detail
	if w == nil {
		return s
	}
	for i := range containerRules {
		if r := &containerRules[i]; r.id == v.Rule {
			if fix := r.fix(w, v, o); fix != "" {
				s += "; " + fix
			}
		}
	}
	return s
}

// isKernelRule reports whether id is a kernel rule (kernelStateUnknown too).
func isKernelRule(id string) bool {
	if id == RuleKernelStateUnknown {
		return true
	}
	for i := range kernelRules {
		if kernelRules[i].id == id {
			return true
		}
	}
	return false
}

// remedyOf is what makes kernel rule id pass again.
func remedyOf(id string) string {
	for i := range kernelRules {
		if kernelRules[i].id == id {
			return kernelRules[i].remedy
		}
	}
	return ""
}

// liveUpdateHow is how a node gets a live patch.
const liveUpdateHow = "patchgate check --apply on the node, or the live-patch provider's own update"

// explainKernel is the kernel's part of a message: why the kernel is behind
// (each kernel rule's finding, unless the message lists it already), which
// rules that made stricter (strict: "runAsRoot is warn", their action on a
// kernel that is not behind) and what would lift it. "" when the kernel
// plays no part in the violations with this action.
func explainKernel(d *Decision, action Action, strict []string, kernelListed bool) string {
	if len(strict) == 0 && !kernelListed {
		return ""
	}
	var causes, needs []string
	unknown, version := false, false
	for _, v := range d.Violations {
		if !isKernelRule(v.Rule) {
			continue
		}
		if v.Action != action {
			detail := v.Detail
			if len(detail) > maxExplainedDetail {
				detail = strings.ToValidUTF8(detail[:maxExplainedDetail], "") + "…"
			}
			causes = append(causes, "["+v.Rule+"] "+detail)
		}
		switch v.Rule {
		case RuleKernelStateUnknown:
			unknown = true
			continue
		case RuleKernelVersion:
			version = true
		}
		if r := remedyOf(v.Rule); r != "" && !slices.Contains(needs, r) {
			needs = append(needs, r)
		}
	}
	// Every failing kernel rule must pass: their needs go together, and
	// one live-patch update brings them.
	var remedies []string
	if len(needs) > 0 {
		r := strings.Join(needs, " and ") + " (" + liveUpdateHow + ")"
		if version && len(needs) == 1 {
			r += ", or a reboot into a newer kernel"
		}
		remedies = append(remedies, r)
	}
	if unknown {
		remedies = append(remedies, kernelStateUnknownRemedy)
	}
	var b strings.Builder
	if len(strict) > 0 {
		b.WriteString("the node's kernel is behind")
		if len(causes) > 0 {
			b.WriteString(" (" + strings.Join(causes, "; ") + ")")
		}
		b.WriteString(", so whenKernelBehind applies: on a patched kernel " + strings.Join(strict, ", "))
	}
	if len(remedies) == 0 {
		// The kernel rules that failed are exempted for this container.
		remedies = append(remedies, "bring the node's kernel up to date (patchgate check shows what it lacks)")
	}
	if b.Len() > 0 {
		b.WriteString("; ")
	}
	lift := "what relaxes those rules: "
	if len(strict) == 0 {
		lift = "what clears the kernel rules: "
	}
	if relaxed := relaxedVerdict(d); (action == ActionEnforce && relaxed != Deny) || (action == ActionWarn && relaxed == Allow) {
		lift = "what would admit it: "
		if action == ActionWarn {
			lift = "what would clear the warning: "
		}
	}
	b.WriteString(lift + strings.Join(remedies, "; and "))
	return b.String()
}

// relaxedVerdict is the verdict d would have on a kernel that is not
// behind: kernel violations gone, each container rule at its normal action.
func relaxedVerdict(d *Decision) Verdict {
	vs := make([]Violation, 0, len(d.Violations))
	for _, v := range d.Violations {
		if isKernelRule(v.Rule) {
			continue
		}
		if v.NormalAction != "" {
			v.Action = v.NormalAction
		}
		vs = append(vs, v)
	}
	return verdictOf(vs)
}
