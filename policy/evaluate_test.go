package policy

import (
	"slices"
	"testing"
)

func rules(d Decision) []string {
	var out []string
	for _, v := range d.Violations {
		out = append(out, v.Rule+"="+string(v.Action))
	}
	return out
}

func TestWhenKernelBehind(t *testing.T) {
	p, err := LoadBytes("kb.yaml", []byte(header+`metadata: {name: kb}
spec:
  kernel: {requiredPatches: [livepatch_sample], action: audit}
  rules:
    runAsRoot: {action: off, whenKernelBehind: enforce}
    seccomp: {action: enforce, whenKernelBehind: warn}
`))
	if err != nil {
		t.Fatal(err)
	}
	w := fixtureWorkload(t, "runAsRoot-fail")
	d := Evaluate(p, w, kernelFixture(t, "patched"), testNow)
	if d.Verdict != Allow || d.KernelBehind || len(d.Violations) != 0 {
		t.Errorf("patched: %s %v %v", d.Verdict, d.KernelBehind, rules(d))
	}
	d = Evaluate(p, w, kernelFixture(t, "behind"), testNow)
	if d.Verdict != Deny || !d.KernelBehind || !slices.Equal(rules(d), []string{"kernelPatches=audit", "runAsRoot=enforce"}) {
		t.Errorf("behind: %s %v %v", d.Verdict, d.KernelBehind, rules(d))
	}
	// Unknown state counts as behind.
	d = Evaluate(p, w, nil, testNow)
	if !d.KernelBehind || !slices.Contains(rules(d), "runAsRoot=enforce") {
		t.Errorf("unknown: %v %v", d.KernelBehind, rules(d))
	}
	// whenKernelBehind may also be milder.
	s := fixtureWorkload(t, "seccomp-fail")
	if d := Evaluate(p, s, kernelFixture(t, "patched"), testNow); d.Verdict != Deny {
		t.Errorf("seccomp patched: %s", d.Verdict)
	}
	if d := Evaluate(p, s, kernelFixture(t, "behind"), testNow); d.Verdict != Warn || !slices.Contains(rules(d), "seccomp=warn") {
		t.Errorf("seccomp behind: %s %v", d.Verdict, rules(d))
	}
}

func TestExemptions(t *testing.T) {
	p, err := LoadBytes("ex.yaml", []byte(header+`metadata: {name: ex}
spec:
  kernel: {requiredPatches: [livepatch_sample]}
  exemptions:
    - name: agents
      namespaces: [kube-system]
      images: ["registry.k8s.io/*"]
    - name: proxy-netns
      containers: [kube-proxy]
      podLabels: {k8s-app: kube-proxy}
      rules: [hostNamespaces]
    - name: annotated
      namespaces: [monitoring]
      annotation: patchgate.dev/exempt
      rules: [runAsRoot, hostNamespaces]
`))
	if err != nil {
		t.Fatal(err)
	}
	agent := fixtureWorkload(t, "exempt-node-agent")
	d := Evaluate(p, agent, kernelFixture(t, "behind"), testNow)
	if d.Verdict != Allow || len(d.Violations) != 0 || !slices.Equal(d.Exemptions, []string{"agents"}) || !d.KernelBehind {
		t.Errorf("agent, all rules exempt (kernel rules too): %s %v %v", d.Verdict, rules(d), d.Exemptions)
	}
	// Every matcher must match: another image is not exempt.
	other := *agent
	other.Container.Image = "docker.io/library/nginx:1.27"
	d = Evaluate(p, &other, kernelFixture(t, "patched"), testNow)
	if d.Verdict != Deny || len(d.Exemptions) != 0 {
		t.Errorf("other image: %s %v", d.Verdict, d.Exemptions)
	}
	// Labels: the proxy-netns exemption lifts only hostNamespaces.
	other.Container.Name = "kube-proxy"
	other.Pod.Labels = map[string]string{"k8s-app": "kube-proxy", "tier": "node"}
	d = Evaluate(p, &other, kernelFixture(t, "patched"), testNow)
	if slices.Contains(rules(d), "hostNamespaces=enforce") || !slices.Contains(rules(d), "privileged=enforce") || !slices.Equal(d.Exemptions, []string{"proxy-netns"}) {
		t.Errorf("label exemption: %v %v", rules(d), d.Exemptions)
	}
	other.Pod.Labels = map[string]string{"k8s-app": "other"}
	if d := Evaluate(p, &other, kernelFixture(t, "patched"), testNow); len(d.Exemptions) != 0 {
		t.Errorf("wrong label value exempted: %v", d.Exemptions)
	}

	// Annotation: only in the namespaces the policy lists for it.
	ann := fixtureWorkload(t, "exempt-annotation")
	d = Evaluate(p, ann, kernelFixture(t, "patched"), testNow)
	if d.Verdict != Allow || !slices.Equal(d.Exemptions, []string{"annotated"}) {
		t.Errorf("annotated in monitoring: %s %v %v", d.Verdict, rules(d), d.Exemptions)
	}
	wrongNS := fixtureWorkload(t, "exempt-annotation-wrong-namespace")
	d = Evaluate(p, wrongNS, kernelFixture(t, "patched"), testNow)
	if d.Verdict != Deny || len(d.Exemptions) != 0 || !slices.Equal(rules(d), []string{"hostNamespaces=enforce", "runAsRoot=enforce"}) {
		t.Errorf("annotated in default: %s %v %v", d.Verdict, rules(d), d.Exemptions)
	}
	ann.Pod.Annotations = map[string]string{"patchgate.dev/exempt": "yes"}
	if d := Evaluate(p, ann, kernelFixture(t, "patched"), testNow); len(d.Exemptions) != 0 {
		t.Errorf("annotation value other than true exempted: %v", d.Exemptions)
	}
	// An exempt rule whose input was unseen is neither deferred nor listed.
	agent.Seen &^= FieldCapabilities
	d = Evaluate(p, agent, kernelFixture(t, "patched"), testNow)
	if len(d.Deferred) != 0 {
		t.Errorf("exempt rules deferred: %v", d.Deferred)
	}
}

func TestVerdictAndOrder(t *testing.T) {
	p := Default()
	w := fixtureWorkload(t, "privileged-fail")
	d := Evaluate(p, w, kernelFixture(t, "patched"), testNow)
	want := []string{"apparmor=audit", "capabilities=enforce", "hostPathMounts=enforce", "privileged=enforce", "procMount=enforce", "seccomp=warn"}
	if d.Verdict != Deny || !slices.Equal(rules(d), want) {
		t.Errorf("privileged: %s %v", d.Verdict, rules(d))
	}
	if d.Policy.Name != "default" || d.Policy.Digest != p.Digest() {
		t.Errorf("policy ref %+v", d.Policy)
	}
	if d := Evaluate(p, fixtureWorkload(t, "seccomp-fail"), kernelFixture(t, "patched"), testNow); d.Verdict != Warn {
		t.Errorf("warn only: %s %v", d.Verdict, rules(d))
	}
	if d := Evaluate(p, fixtureWorkload(t, "apparmor-fail"), kernelFixture(t, "patched"), testNow); d.Verdict != Allow || len(d.Violations) != 1 {
		t.Errorf("audit only: %s %v", d.Verdict, rules(d))
	}
	// Nothing seen: every container rule deferred, nothing passes silently.
	w = &Workload{Container: ContainerIdentity{Name: "x"}}
	d = Evaluate(p, w, kernelFixture(t, "patched"), testNow)
	if len(d.Deferred) != len(containerRules) || len(d.Violations) != 0 {
		t.Errorf("nothing seen: deferred %v violations %v", d.Deferred, rules(d))
	}
	if !slices.IsSorted(d.Deferred) {
		t.Errorf("deferred not sorted: %v", d.Deferred)
	}
}

func TestEvaluateNilInputsDeny(t *testing.T) {
	if d := Evaluate(nil, &Workload{}, nil, testNow); d.Verdict != Deny {
		t.Errorf("nil policy: %s", d.Verdict)
	}
	if d := Evaluate(Default(), nil, nil, testNow); d.Verdict != Deny {
		t.Errorf("nil workload: %s", d.Verdict)
	}
	// A policy built by hand (not Load) is compiled on the fly.
	p := &Policy{Metadata: Metadata{Name: "literal"}, Spec: Default().Spec}
	if d := Evaluate(p, fixtureWorkload(t, "runAsRoot-fail"), kernelFixture(t, "patched"), testNow); d.Verdict != Deny || !slices.Contains(rules(d), "runAsRoot=enforce") {
		t.Errorf("literal policy: %s %v", d.Verdict, rules(d))
	}
	p.Spec.Exemptions = []Exemption{{Name: "bad", Namespaces: []string{"x"}, Rules: []string{"nope"}}}
	if d := Evaluate(p, &Workload{Seen: FieldsAll}, nil, testNow); d.Verdict != Deny {
		t.Errorf("invalid literal policy: %s", d.Verdict)
	}
}

// TestDecisionIsDeterministic: details never depend on map iteration order.
func TestDecisionIsDeterministic(t *testing.T) {
	p := everyRuleEnforced(t)
	w := fixtureWorkload(t, "privileged-fail")
	w.Sysctls = map[string]string{"kernel.a": "1", "vm.b": "2", "kernel.c": "3", "net.core.d": "4", "fs.e": "5"}
	w.HostNamespaces = []string{"uts", "pid", "network", "ipc", "pid"}
	first := Evaluate(p, w, kernelFixture(t, "behind"), testNow)
	for i := 0; i < 50; i++ {
		d := Evaluate(p, w, kernelFixture(t, "behind"), testNow)
		if !slices.Equal(d.Violations, first.Violations) {
			t.Fatalf("run %d differs:\n%+v\n%+v", i, d.Violations, first.Violations)
		}
	}
	for _, v := range first.Violations {
		if v.Rule == RuleSysctls && v.Detail != `container "app" must not set sysctls "fs.e", "kernel.a", "kernel.c", "net.core.d", "vm.b" (linux.sysctl)` {
			t.Errorf("sysctls detail %q", v.Detail)
		}
		if v.Rule == RuleHostNamespaces && v.Detail != `container "app" must not share the host's "ipc", "network", "pid", "uts" namespaces (linux.namespaces)` {
			t.Errorf("hostNamespaces detail %q", v.Detail)
		}
	}
}
