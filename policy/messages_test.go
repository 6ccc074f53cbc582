package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// recordedAnnotations returns the annotations of a spec a real runtime wrote
// (hook/testdata: containerd 2.4.2 CRI, podman 4.3.1, runc 1.1.5).
func recordedAnnotations(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "hook", "testdata", dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s.Annotations
}

// asOrigin makes w look as the runtime of origin o made it: the annotations
// that runtime wrote on a recorded container, and for anything but a pod no
// pod name (eval's --pod flags make a fixture a pod).
func asOrigin(t *testing.T, w *Workload, o origin) {
	t.Helper()
	switch o {
	case originKubernetes:
		w.Annotations = recordedAnnotations(t, "containerd")
		return
	case originPodman:
		w.Annotations = recordedAnnotations(t, "podman/default")
	default:
		w.Annotations = recordedAnnotations(t, "runc")
	}
	w.Pod = PodIdentity{}
}

func loadPolicy(t *testing.T, body string) *Policy {
	t.Helper()
	p, err := LoadBytes("m.yaml", []byte(header+"metadata: {name: m}\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ruleMessageCases is, for every container rule, a fixture that fails it
// and what its message must say for a pod and for podman.
var ruleMessageCases = map[string]struct {
	fixture          string
	kubernetes, podm string
}{
	RuleRunAsRoot:           {"runAsRoot-fail", "Kubernetes: must set securityContext.runAsNonRoot=true and securityContext.runAsUser to a non-zero uid", "podman: run with --user set to a non-zero uid"},
	RulePrivileged:          {"privileged-fail", "Kubernetes: must not set securityContext.privileged=true", "podman: run without --privileged"},
	RuleCapabilities:        {"capabilities-fail", "Kubernetes: must not add them in securityContext.capabilities.add", "podman: run without --cap-add"},
	RuleHostNamespaces:      {"hostNamespaces-fail", "Kubernetes: must not set spec.hostNetwork=true, spec.hostPID=true", "podman: run without --network=host, --pid=host"},
	RuleHostPathMounts:      {"hostPathMounts-fail", "Kubernetes: remove the volumes[].hostPath volume", "podman: remove the -v/--volume or --mount"},
	RuleHostDevices:         {"hostDevices-fail", "Kubernetes: the devices come from a device plugin (resources.limits)", "podman: run without --device"},
	RulePrivilegeEscalation: {"privilegeEscalation-fail", "Kubernetes: must set securityContext.allowPrivilegeEscalation=false", "podman: run with --security-opt no-new-privileges"},
	RuleSeccomp:             {"seccomp-fail", `Kubernetes: must set securityContext.seccompProfile.type to "RuntimeDefault"`, "podman: run without --security-opt seccomp=unconfined"},
	RuleAppArmor:            {"apparmor-fail", `Kubernetes: must set securityContext.appArmorProfile.type to "RuntimeDefault"`, "podman: run without --security-opt apparmor=unconfined"},
	RuleSysctls:             {"sysctls-fail-cri", "Kubernetes: must not set them in spec.securityContext.sysctls", "podman: run without --sysctl"},
	RuleProcMount:           {"procMount-fail", `Kubernetes: must not set securityContext.procMount to "Unmasked"`, "podman: run without --security-opt unmask"},
}

// TestExplainEveryRule judges every registered container rule's message on
// a fixture that fails it, as a pod, a podman container and a plain OCI
// container, with the kernel patched and with the kernel behind making the
// rule stricter (whenKernelBehind): the message names the rule, the OCI
// field (the detail), the field of the tool the container came from, and
// the kernel's cause and remedy only when the kernel made it stricter.
func TestExplainEveryRule(t *testing.T) {
	patched, behind := kernelFixture(t, "patched"), kernelFixture(t, "behind")
	for _, r := range containerRules {
		tc, ok := ruleMessageCases[r.id]
		if !ok {
			t.Errorf("rule %s has no message case", r.id)
			continue
		}
		// The rule alone, warn on a patched kernel and enforce while the
		// kernel lacks livepatch_sample (audited only).
		p := loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: audit, requiredPatches: [livepatch_sample]}\n  rules:\n    "+
			r.id+": {action: warn, whenKernelBehind: enforce}\n")
		for _, o := range []origin{originKubernetes, originPodman, originOCI} {
			w := fixtureWorkload(t, tc.fixture)
			asOrigin(t, w, o)
			if got := originOf(w); got != o {
				t.Fatalf("%s: origin %d, want %d", r.id, got, o)
			}
			want := map[origin]string{originKubernetes: tc.kubernetes, originPodman: tc.podm}[o]

			// Patched: a warning, no kernel part.
			d := Evaluate(p, w, patched, testNow)
			if d.Verdict != Warn || len(d.Violations) != 1 || d.Violations[0].NormalAction != "" {
				t.Fatalf("%s patched: %+v", r.id, d)
			}
			v := d.Violations[0]
			msg := Explain(&d, w, ActionWarn)
			checkOneLine(t, r.id, msg)
			if !strings.HasPrefix(msg, "["+r.id+"] "+v.Detail) {
				t.Errorf("%s origin %d: message does not start with the rule and detail:\n%s", r.id, o, msg)
			}
			if want != "" && !strings.Contains(msg, want) {
				t.Errorf("%s origin %d: message lacks %q:\n%s", r.id, o, want, msg)
			}
			if o == originOCI && (strings.Contains(msg, "Kubernetes:") || strings.Contains(msg, "podman:")) {
				t.Errorf("%s plain OCI: message names a tool:\n%s", r.id, msg)
			}
			if o == originPodman && strings.Contains(msg, "Kubernetes:") || o == originKubernetes && strings.Contains(msg, "podman:") {
				t.Errorf("%s origin %d: message names the other tool:\n%s", r.id, o, msg)
			}
			if strings.Contains(msg, "node's kernel") || strings.Contains(msg, "live patch") {
				t.Errorf("%s patched: message names the kernel:\n%s", r.id, msg)
			}

			// Behind: refused, and the message says why and what admits it.
			d = Evaluate(p, w, behind, testNow)
			if d.Verdict != Deny || !d.KernelBehind {
				t.Fatalf("%s behind: %+v", r.id, d)
			}
			msg = Explain(&d, w, ActionEnforce)
			checkOneLine(t, r.id, msg)
			for _, s := range []string{
				"[" + r.id + "] " + v.Detail,
				`the node's kernel is behind ([kernelPatches] required live patch is not in force: "livepatch_sample" (in transition) (spec.kernel.requiredPatches))`,
				"so whenKernelBehind applies: on a patched kernel " + r.id + " is warn",
				"what would admit it: the required live patch in force (patchgate check --apply on the node, or the live-patch provider's own update)",
			} {
				if !strings.Contains(msg, s) {
					t.Errorf("%s behind origin %d: message lacks %q:\n%s", r.id, o, s, msg)
				}
			}
			if want != "" && !strings.Contains(msg, want) {
				t.Errorf("%s behind origin %d: message lacks %q:\n%s", r.id, o, want, msg)
			}
		}
	}
}

func checkOneLine(t *testing.T, what, msg string) {
	t.Helper()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("%s: message is not one line: %q", what, msg)
	}
}

// TestExplainKernelRules: every kernel rule, enforced, refuses with its own
// finding and what would make it pass; while it only makes a container
// rule stricter, the message carries its finding as the cause.
func TestExplainKernelRules(t *testing.T) {
	pending := kernelFixture(t, "patched")
	yes := true
	pending.UpdatesPending = &yes
	cases := map[string]struct {
		kernel string
		state  *KernelState
		detail string
		remedy string
	}{
		RuleKernelPatches:        {"requiredPatches: [livepatch_sample]", kernelFixture(t, "behind"), `"livepatch_sample" (in transition)`, "the required live patch in force (patchgate check --apply"},
		RuleKernelCVEs:           {"requiredCVEs: [CVE-2024-1086]", kernelFixture(t, "patched"), "CVE-2024-1086", "a live patch that fixes the CVE (patchgate check --apply"},
		RuleKernelVersion:        {"minimumVersion: 6.1.0-18-amd64", kernelFixture(t, "behind"), `kernel release "6.1.0-17-amd64" is older than spec.kernel.minimumVersion "6.1.0-18-amd64"`, "or a reboot into a newer kernel"},
		RuleKernelUpdatesPending: {"denyWhenUpdatesPending: true", pending, "kernel updates pending", "the pending updates applied (patchgate check --apply"},
		RuleKernelStateUnknown:   {"onUnknown: enforce", kernelFixture(t, "unknown"), "permission denied", "patchgate reading the kernel's live-patch state again"},
	}
	ids := RuleIDs()[len(containerRules):]
	for _, id := range ids {
		tc, ok := cases[id]
		if !ok {
			t.Errorf("kernel rule %s has no message case", id)
			continue
		}
		w := fixtureWorkload(t, "runAsRoot-fail")
		// Enforced: the kernel rule itself refuses every container.
		p := loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: enforce, "+tc.kernel+"}\n")
		d := Evaluate(p, w, tc.state, testNow)
		msg := Explain(&d, w, ActionEnforce)
		checkOneLine(t, id, msg)
		for _, s := range []string{"[" + id + "] ", tc.detail, "what would admit it: ", tc.remedy} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s enforced: message lacks %q:\n%s", id, s, msg)
			}
		}
		// Audited: the cause of a stricter runAsRoot.
		p = loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: audit, onUnknown: audit, "+strings.Replace(tc.kernel, "onUnknown: enforce", "maxStateAge: 1h", 1)+"}\n"+
			"  rules:\n    runAsRoot: {action: audit, whenKernelBehind: enforce}\n")
		d = Evaluate(p, w, tc.state, testNow)
		msg = Explain(&d, w, ActionEnforce)
		checkOneLine(t, id, msg)
		for _, s := range []string{
			"[runAsRoot] ", "the node's kernel is behind ([" + id + "] ", tc.detail,
			"on a patched kernel runAsRoot is audit", "what would admit it: ", tc.remedy,
		} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s as cause: message lacks %q:\n%s", id, s, msg)
			}
		}
	}
}

// TestExplainPrivilegedFolds: a privileged container's message says
// privileged, not the capabilities and devices privileged gives it; the
// decision (and so the audit record) keeps every violation's detail. The
// containers are containerd's WithPrivileged spec and podman --privileged
// as recorded.
func TestExplainPrivilegedFolds(t *testing.T) {
	// As in TestRecordedRuntimeSpecs: the recording's private podman
	// root and runroot are the node's runtime directories.
	p := loadPolicy(t, "spec:\n  defaultAction: enforce\n  rules:\n    hostPathMounts:\n      runtimeDirs: [/tmp/f-podman/root, /tmp/f-podman/runroot]\n")
	podman := func() *Workload {
		data, err := os.ReadFile(filepath.Join("..", "hook", "testdata", "podman", "privileged-pod", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSpec(data)
		if err != nil {
			t.Fatal(err)
		}
		w, err := FromSpec(s, nil, FromSpecOptions{Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, tc := range []struct {
		name    string
		w       *Workload
		fix     string
		implied []string
	}{
		// containerd's library spec: no host devices (the CRI adds
		// them), no_new_privs left as the base container had it.
		{"containerd", fixtureWorkload(t, "privileged-fail"), "Kubernetes: must not set securityContext.privileged=true",
			[]string{RuleAppArmor, RuleCapabilities, RuleHostPathMounts, RuleProcMount, RuleSeccomp}},
		{"podman", podman(), "podman: run without --privileged",
			[]string{RuleAppArmor, RuleCapabilities, RuleHostDevices, RuleHostPathMounts, RulePrivilegeEscalation, RuleProcMount, RuleSeccomp}},
	} {
		d := Evaluate(p, tc.w, freshKernel(), testNow)
		var implied []string
		for _, v := range d.Violations {
			if v.ImpliedBy == RulePrivileged {
				implied = append(implied, v.Rule)
			}
			if v.Detail == "" {
				t.Errorf("%s: %s lost its detail", tc.name, v.Rule)
			}
		}
		if !slices.Equal(implied, tc.implied) {
			t.Errorf("%s: implied by privileged %v, want %v", tc.name, implied, tc.implied)
		}
		msg := Explain(&d, tc.w, ActionEnforce)
		checkOneLine(t, tc.name, msg)
		for _, s := range []string{"[privileged] ", tc.fix, "privileged also fails rules " + strings.Join(tc.implied, ", ")} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message lacks %q:\n%s", tc.name, s, msg)
			}
		}
		for _, s := range []string{"CAP_", "/dev/", "[capabilities]", "[hostDevices]", "linux.resources.devices"} {
			if strings.Contains(msg, s) {
				t.Errorf("%s: message lists %q:\n%s", tc.name, s, msg)
			}
		}
		if len(msg) > 1200 {
			t.Errorf("%s: message is %d bytes:\n%s", tc.name, len(msg), msg)
		}
		// Root is no part of privileged: it stays in the message.
		if hasRule(d.Violations, RuleRunAsRoot, ActionEnforce) && !strings.Contains(msg, "[runAsRoot] ") {
			t.Errorf("%s: runAsRoot folded:\n%s", tc.name, msg)
		}
	}

	// A host path bind next to privileged is its own finding.
	w := fixtureWorkload(t, "privileged-fail")
	w.Mounts = append(w.Mounts, Mount{Destination: "/host", Source: "/", Type: "bind", Options: []string{"rbind", "rw"}})
	d := Evaluate(p, w, freshKernel(), testNow)
	msg := Explain(&d, w, ActionEnforce)
	if !strings.Contains(msg, "[hostPathMounts] ") || strings.Contains(msg, "rules apparmor, capabilities, hostDevices, hostPathMounts") {
		t.Errorf("hostPath next to privileged folded:\n%s", msg)
	}
}

// TestExplainStricterButStillRefused: when a rule that refuses on any
// kernel remains, the kernel part does not promise admission.
func TestExplainStricterButStillRefused(t *testing.T) {
	p := loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: audit, requiredPatches: [livepatch_sample]}\n  rules:\n"+
		"    runAsRoot: {action: warn, whenKernelBehind: enforce}\n    seccomp: {action: enforce}\n")
	w := fixtureWorkload(t, "seccomp-fail")
	w.User.UID = 0
	d := Evaluate(p, w, kernelFixture(t, "behind"), testNow)
	msg := Explain(&d, w, ActionEnforce)
	if !strings.Contains(msg, "what relaxes those rules: the required live patch in force") || strings.Contains(msg, "would admit") {
		t.Errorf("message:\n%s", msg)
	}
	if !strings.Contains(msg, "on a patched kernel runAsRoot is warn") || strings.Contains(msg, "runAsRoot is warn, seccomp") {
		t.Errorf("message:\n%s", msg)
	}
	// The warning side: a rule warn only while behind.
	p = loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: audit, requiredPatches: [livepatch_sample]}\n  rules:\n"+
		"    runAsRoot: {action: audit, whenKernelBehind: warn}\n")
	d = Evaluate(p, w, kernelFixture(t, "behind"), testNow)
	if msg := Explain(&d, w, ActionWarn); !strings.Contains(msg, "what would clear the warning: ") {
		t.Errorf("warn message:\n%s", msg)
	}
	// A rule made less strict while behind is no kernel cause.
	p = loadPolicy(t, "spec:\n  defaultAction: off\n  kernel: {action: audit, requiredPatches: [livepatch_sample]}\n  rules:\n"+
		"    runAsRoot: {action: enforce, whenKernelBehind: warn}\n")
	d = Evaluate(p, w, kernelFixture(t, "behind"), testNow)
	if d.Violations[1].NormalAction != "" {
		t.Errorf("less strict while behind: %+v", d.Violations)
	}
	if msg := Explain(&d, w, ActionWarn); strings.Contains(msg, "kernel") {
		t.Errorf("less strict while behind:\n%s", msg)
	}
}

func TestOriginOf(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		pod  PodIdentity
		want origin
	}{
		{recordedAnnotations(t, "containerd"), PodIdentity{}, originKubernetes},
		{recordedAnnotations(t, "podman/default"), PodIdentity{}, originPodman},
		// podman --pod writes CRI-O's container type, and is still podman.
		{recordedAnnotations(t, "podman/privileged-pod"), PodIdentity{}, originPodman},
		{recordedAnnotations(t, "runc"), PodIdentity{}, originOCI},
		{map[string]string{"io.container.manager": "cri-o"}, PodIdentity{}, originKubernetes},
		{nil, PodIdentity{Namespace: "default", Name: "web"}, originKubernetes},
		{nil, PodIdentity{Annotations: map[string]string{AnnotationContainerType: "sandbox"}}, originKubernetes},
		{nil, PodIdentity{UID: "b4dd834f"}, originOCI},
	} {
		w := &Workload{Annotations: tc.ann, Pod: tc.pod}
		if got := originOf(w); got != tc.want {
			t.Errorf("%v %+v: origin %d, want %d", tc.ann, tc.pod, got, tc.want)
		}
	}
}

// TestMessagesInDocs: the example messages in docs/policy.md ("Messages")
// are what Explain says for these fixtures, under the shipped policies.
func TestMessagesInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) *Policy {
		data, err := os.ReadFile(filepath.Join("..", "examples", "policies", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := LoadBytes(name+".yaml", data)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	podmanPIDHost := func() *Workload {
		data, err := os.ReadFile(filepath.Join("..", "hook", "testdata", "podman", "pid-host", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ParseSpec(data)
		if err != nil {
			t.Fatal(err)
		}
		w, err := FromSpec(s, nil, FromSpecOptions{Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		// The recording ran podman with private roots; on a node they
		// are podman's defaults, which the shipped policies know.
		for i := range w.Mounts {
			m := &w.Mounts[i]
			m.Source = strings.Replace(m.Source, "/tmp/f-podman/runroot", "/run/containers/storage", 1)
			m.Source = strings.Replace(m.Source, "/tmp/f-podman/root", "/var/lib/containers/storage", 1)
		}
		return w
	}
	for _, tc := range []struct {
		policy string
		w      *Workload
		kernel string
		hook   bool // the hook's prefix, else the NRI plugin's
	}{
		{"kernel-aware", fixtureWorkload(t, "runAsRoot-fail"), "behind", false},
		{"kernel-aware", fixtureWorkload(t, "privileged-fail"), "behind", false},
		{"baseline", podmanPIDHost(), "patched", true},
	} {
		d := Evaluate(load(tc.policy), tc.w, kernelFixture(t, tc.kernel), testNow)
		var ids []string
		for _, v := range d.Violations {
			if v.Action == ActionEnforce {
				ids = append(ids, v.Rule)
			}
		}
		// The prefixes of plugin.DenyMessage and the hook's outcome.
		// plugin.DenyMessage does not repeat a lone finding's tag.
		tag := "[" + strings.Join(ids, ",") + "]"
		msg := "patchgate: denied " + tag + ": " + strings.TrimPrefix(Explain(&d, tc.w, ActionEnforce), tag+" ") + ` (policy "` + tc.policy + `")`
		if tc.hook {
			msg = `by policy "` + tc.policy + `": rules ` + strings.Join(ids, ", ") + ": " + Explain(&d, tc.w, ActionEnforce)
		}
		if !strings.Contains(string(doc), msg) {
			t.Errorf("docs/policy.md lacks the message for %s under %s (rules %s):\n%s", tc.w.Container.Name, tc.policy, strings.Join(ids, ","), msg)
		}
	}
}
