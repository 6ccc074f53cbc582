package plugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	validator "github.com/containerd/nri/plugins/default-validator"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

const nriPrefix = `validator "50-patchgate" rejected container adjustment, reason: `

func TestCompliantContainerAdmitted(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	if err := h.runPod(pod); err != nil {
		t.Fatalf("pod refused: %v", err)
	}
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatalf("compliant container refused: %v", err)
	}
	if _, ok := rpl.GetAdjust().GetAnnotations()[AnnotationFlagged]; ok {
		t.Error("compliant container flagged")
	}
	if recs := h.records(); len(recs) != 0 {
		t.Errorf("audit records for an allowed container: %+v", recs)
	}
}

func TestRefusedWithReason(t *testing.T) {
	for _, tc := range []struct {
		capture string
		rule    string
		detail  string
		// fix is what the message says to change in the pod.
		fix string
	}{
		// NRI does not show privileged, but a privileged container's
		// devices and sysfs do: the message says privileged, not 102
		// devices; the audit record keeps the finding.
		{"privileged", "hostDevices", `container "privileged" has what privileged gives`, "Kubernetes: must not set securityContext.privileged=true"},
		{"device-fuse", "hostDevices", `"/dev/fuse"`, "Kubernetes: the devices come from a device plugin"},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			pod, ctr := loadCapture(t, tc.capture)
			_, err := h.create(pod, ctr)
			if err == nil {
				t.Fatal("container admitted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, nriPrefix+"patchgate: denied [") || !strings.Contains(msg, tc.rule) || !strings.Contains(msg, tc.detail) {
				t.Errorf("error %q lacks patchgate's reason (%s, %s)", msg, tc.rule, tc.detail)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, tc.fix) {
				t.Errorf("error %q does not say what to change (%s)", msg, tc.fix)
			}
			if tc.capture == "privileged" && strings.Contains(msg, "/dev/") {
				t.Errorf("privileged container's error lists devices: %q", msg)
			}
			if !strings.Contains(msg, `(policy "plugin-test")`) {
				t.Errorf("error does not name the policy: %q", msg)
			}
			recs := h.records()
			if len(recs) != 1 || recs[0].Action != audit.ActionBlocked || recs[0].Source != audit.SourceNRI ||
				recs[0].Container.ID != ctr.GetId() || recs[0].Pod.Name != "pod-"+tc.capture {
				t.Fatalf("audit records = %+v, want one blocked nri record", recs)
			}
			// NRI cannot see these; the record must say they were left to the hook.
			for _, r := range []string{"capabilities", "privileged"} {
				if !slices.Contains(recs[0].Deferred, r) {
					t.Errorf("record does not list %s as deferred: %v", r, recs[0].Deferred)
				}
			}
			// The record keeps the whole finding the message folds.
			for _, v := range recs[0].Violations {
				if v.Rule == "hostDevices" && tc.capture == "privileged" &&
					(v.ImpliedBy != "privileged" || !strings.Contains(v.Detail, "a device cgroup that allows every device")) {
					t.Errorf("record's hostDevices violation: %+v", v)
				}
			}
		})
	}
}

func TestRootFlagged(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "default-kubelet")
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatalf("root container refused under a warn policy: %v", err)
	}
	ann := rpl.GetAdjust().GetAnnotations()
	if ann[AnnotationFlagged] != "true" || ann[AnnotationRules] != "runAsRoot" {
		t.Errorf("annotations = %v", ann)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Action != audit.ActionFlagged || recs[0].Violations[0].Rule != "runAsRoot" {
		t.Fatalf("audit = %+v", recs)
	}
}

func TestHostPIDPodRefusedAtSandbox(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, _ := loadCapture(t, "host-pid")
	err := h.runPod(pod)
	if err == nil {
		t.Fatal("host-PID pod admitted")
	}
	if !strings.Contains(err.Error(), "patchgate: denied [hostNamespaces]") || !strings.Contains(err.Error(), `pod "cap/pod-host-pid"`) {
		t.Errorf("error = %q", err)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Action != audit.ActionBlocked || recs[0].Container.Name != "POD" {
		t.Fatalf("audit = %+v", recs)
	}
	// A pod-level refusal judges only pod rules: no deferrals to confuse.
	if len(recs[0].Deferred) != 0 {
		t.Errorf("pod record lists deferred rules: %v", recs[0].Deferred)
	}
	// A normal pod passes.
	okPod, _ := loadCapture(t, "default-kubelet")
	if err := h.runPod(okPod); err != nil {
		t.Errorf("normal pod refused: %v", err)
	}
}

func TestExemptNamespaceAdmitsPrivileged(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "privileged")
	pod.Namespace = "kube-system"
	pod.Annotations["io.kubernetes.cri.sandbox-namespace"] = "kube-system"
	ctr.Annotations["io.kubernetes.cri.sandbox-namespace"] = "kube-system"
	if _, err := h.create(pod, ctr); err != nil {
		t.Fatalf("exempt privileged container refused: %v", err)
	}
	// The exemption lifts every rule; the record names it.
	recs := h.records()
	if len(recs) != 1 || !slices.Contains(recs[0].Exemptions, "node-agents") || recs[0].Action != audit.ActionAllowed {
		t.Fatalf("audit = %+v, want one allowed record naming exemption node-agents", recs)
	}
}

// kmsgPlugin is a second, real NRI plugin that injects a host device: the
// kind of adjustment patchgate must judge although it did not make it.
type kmsgPlugin struct{}

func (kmsgPlugin) CreateContainer(context.Context, *api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj := &api.ContainerAdjustment{}
	adj.AddDevice(&api.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
	return adj, nil, nil
}

func TestOtherPluginsAdjustmentsAreJudged(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	s, err := stub.New(kmsgPlugin{}, stub.WithPluginName("kmsg"), stub.WithPluginIdx("10"),
		stub.WithSocketPath(filepath.Join(h.dir, "nri.sock")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for len(h.synced) > 0 {
		<-h.synced
	}
	go func() { _ = s.Run(ctx) }()
	defer s.Stop()
	waitFor(t, func() bool { return len(h.synced) > 0 }, "second plugin connected")

	pod, ctr := loadCapture(t, "seccomp-unconfined")
	_, err = h.create(pod, ctr)
	if err == nil || !strings.Contains(err.Error(), "patchgate: denied [hostDevices]") || !strings.Contains(err.Error(), "/dev/kmsg") {
		t.Fatalf("a device injected by another plugin was not judged: %v", err)
	}
}

func TestHookInjected(t *testing.T) {
	h := newHarness(t, harnessOpts{hookPath: "/usr/local/bin/patchgate"})
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatal(err)
	}
	hooks := rpl.GetAdjust().GetHooks().GetCreateRuntime()
	if len(hooks) != 1 {
		t.Fatalf("createRuntime hooks = %v", hooks)
	}
	// No claim about what NRI judged travels in the container's hook: the
	// hook asks the service, which remembers what the validator judged.
	want := []string{"/usr/local/bin/patchgate", "hook", "--identity-from=containerd"}
	if hooks[0].Path != "/usr/local/bin/patchgate" || !slices.Equal(hooks[0].Args, want) {
		t.Errorf("hook = %v %v, want args %v", hooks[0].Path, hooks[0].Args, want)
	}
	waitFor(t, func() bool { return h.hookStatus() == "injected" }, "status file hookInjection.status=injected")
}

// A bind mount's source is judged by where its symlinks lead, which only
// the hook resolves: the plugin leaves the mounts to the hook (it does not
// list them as judged) instead of judging the name.
func TestBindMountsLeftToHook(t *testing.T) {
	h := newHarness(t, harnessOpts{hookPath: "/usr/local/bin/patchgate"})
	pod, ctr := loadCapture(t, "hostpath-root")
	rpl, err := h.create(pod, ctr)
	if err != nil && strings.Contains(err.Error(), "hostPathMounts") {
		t.Fatalf("plugin judged a bind mount without resolving it: %v", err)
	}
	hooks := rpl.GetAdjust().GetHooks().GetCreateRuntime()
	if len(hooks) != 1 {
		t.Fatalf("createRuntime hooks = %v", hooks)
	}
	for _, a := range hooks[0].Args {
		if strings.HasPrefix(a, "--nri-judged=") && slices.Contains(strings.Split(strings.TrimPrefix(a, "--nri-judged="), ","), "mounts") {
			t.Errorf("hook told the plugin judged the mounts: %v", hooks[0].Args)
		}
	}
}

func TestHookRefusedIsLoud(t *testing.T) {
	h := newHarness(t, harnessOpts{
		hookPath:  "/usr/local/bin/patchgate",
		validator: &validator.DefaultValidatorConfig{Enable: true, RejectOCIHookAdjustment: true},
	})
	h.p.hooks.grace = 10 * time.Millisecond
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	for i := 0; i < refusedAfter+1; i++ {
		c := ApplyAdjustment(ctr, nil)
		c.Id = c.Id[:60] + "000" + string(rune('0'+i))
		_, err := h.create(pod, c)
		if err == nil || !strings.Contains(err.Error(), "attempted restricted OCI hook injection") {
			t.Fatalf("the default validator did not refuse the hook: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, func() bool { return h.hookStatus() == "refused" }, "status file hookInjection.status=refused")
	if !strings.Contains(h.logs.String(), "HOOK INJECTION REFUSED") || !strings.Contains(h.logs.String(), "reject_oci_hook_adjustment") {
		t.Errorf("no loud log line:\n%s", h.logs.String())
	}
}

func TestSynchronizeAuditsRunningContainers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "privileged")
	ctr.State = api.ContainerState_CONTAINER_RUNNING
	h.mu.Lock()
	h.runningPods, h.runningCtrs = []*api.PodSandbox{pod}, []*api.Container{ctr}
	h.mu.Unlock()
	// Reconnect: a runtime restart, as containerd does it.
	h.restartRuntime()
	recs := h.records()
	if len(recs) != 1 || recs[0].Container.ID != ctr.GetId() || recs[0].Action != audit.ActionFlagged {
		t.Fatalf("audit = %+v, want the running privileged container flagged (not blocked)", recs)
	}
	// A second reconnect does not write it again.
	h.restartRuntime()
	if n := len(h.records()); n != 1 {
		t.Errorf("%d records after a second sync, want 1", n)
	}
}

func TestReconnectsAfterRuntimeRestart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.restartRuntime()
	pod, ctr := loadCapture(t, "privileged")
	if _, err := h.create(pod, ctr); err == nil || !strings.Contains(err.Error(), "patchgate: denied") {
		t.Fatalf("after a runtime restart patchgate is not deciding: %v", err)
	}
	if !strings.Contains(h.logs.String(), "reconnecting") {
		t.Error("reconnect not logged")
	}
}

func TestPolicyHotReload(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "default-kubelet")
	if _, err := h.create(pod, ctr); err != nil {
		t.Fatalf("root refused under the warn policy: %v", err)
	}
	h.installPolicy("strict-root.yaml")
	waitFor(t, func() bool { return h.svc.Policy().Name() == "plugin-test-strict" }, "new policy in force")
	if _, err := h.create(pod, ctr); err == nil || !strings.Contains(err.Error(), "[runAsRoot]") {
		t.Fatalf("changed policy not applied to the next create: %v", err)
	}
	// A broken policy keeps the last good one.
	if err := os.WriteFile(filepath.Join(h.dir, "policy", "policy.yaml"), []byte("spec: {rules: {runAsRoot: {action: maybe}}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := h.create(pod, ctr); err == nil || !strings.Contains(err.Error(), "[runAsRoot]") {
		t.Fatalf("broken policy replaced the last good one: %v", err)
	}
}

func (h *harness) restartRuntime() {
	h.t.Helper()
	h.rt.Stop()
	h.mu.Lock()
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.conns = nil
	h.mu.Unlock()
	sock := filepath.Join(h.dir, "nri.sock")
	_ = os.Remove(sock)
	rt, err := newRuntime(h, sock, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rt = rt
	h.waitSynced()
}

func (h *harness) hookStatus() string {
	b, err := os.ReadFile(filepath.Join(h.dir, "status.json"))
	if err != nil {
		return ""
	}
	var st service.Status
	if json.Unmarshal(b, &st) != nil || st.Hook == nil {
		return ""
	}
	return st.Hook.Status
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A plugin the runtime launched has no node service until Configure hands
// it the drop-in configuration (nri.conf).
func TestConfigureBuildsTheNode(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	var got string
	p, err := New(WithConfigure(func(_ context.Context, config string) (Node, error) {
		got = config
		return h.svc, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.nodeOrErr(); err == nil {
		t.Fatal("node before Configure")
	}
	if _, err := p.Configure(context.Background(), "policy: /etc/patchgate\n", "containerd", "v2.4.2"); err != nil {
		t.Fatal(err)
	}
	if got != "policy: /etc/patchgate\n" {
		t.Errorf("configure got %q", got)
	}
	if n, err := p.nodeOrErr(); err != nil || n != Node(h.svc) {
		t.Errorf("node after Configure: %v %v", n, err)
	}
	if _, err := New(); err == nil {
		t.Error("a plugin with neither a node nor a way to configure one was accepted")
	}
	if err := p.SetHook("relative/patchgate"); err == nil {
		t.Error("relative hook path accepted")
	}
}

func TestDenyMessage(t *testing.T) {
	d := &policy.Decision{Verdict: policy.Deny, KernelBehind: true, Policy: policy.PolicyRef{Name: "p"},
		Violations: []policy.Violation{
			{Rule: "runAsRoot", Action: policy.ActionEnforce, Detail: "container \"a\" must not run as uid 0\n(process.user.uid)"},
			{Rule: "kernelPatches", Action: policy.ActionWarn, Detail: "patch missing"},
		}}
	if got, want := DenyMessage(d, nil, false), `patchgate: denied [runAsRoot]: container "a" must not run as uid 0 (process.user.uid) (policy "p")`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := DenyMessage(d, nil, true); !strings.HasPrefix(got, "patchgate: kernel live patch in progress, retry [runAsRoot]") {
		t.Errorf("remediation message: %s", got)
	}
}

// The plugin plans its remediation wait with the runtime's configured
// request timeout, learnt at Configure.
func TestRequestTimeoutFromRuntime(t *testing.T) {
	adaptation.SetPluginRequestTimeout(4 * time.Second)
	defer adaptation.SetPluginRequestTimeout(api.DefaultPluginRequestTimeout)
	h := newHarness(t, harnessOpts{})
	if got := h.p.maxWait(); got != 2*time.Second {
		t.Errorf("maxWait = %v with a 4s request timeout, want 2s", got)
	}
}

// Without a hook path nobody judges capabilities, privileged, ...: under the
// default hook.onError (deny) a container is refused with a reason naming
// the unjudged rules and the fix (REVIEW G1).
func TestNoHookPathRefusesUnjudged(t *testing.T) {
	h := newHarness(t, harnessOpts{noHook: true})
	if !strings.Contains(h.logs.String(), "NO OCI HOOK") {
		t.Errorf("no start-up warning about the missing hook path; logs:\n%s", h.logs.String())
	}
	waitFor(t, func() bool { return h.hookStatus() == hookDisabled }, "status file hookInjection.status=disabled")
	pod, ctr := loadCapture(t, "default-kubelet")
	_, err := h.create(pod, ctr)
	if err == nil {
		t.Fatal("container admitted with capabilities and privileged unjudged")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, nriPrefix+"patchgate: cannot judge [") || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error %q is not patchgate's one-line reason", msg)
	}
	for _, want := range []string{"capabilities", "privileged", "privilegeEscalation", "--hook-path", "hookPath", `(policy "plugin-test")`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %s", msg, want)
		}
	}
	if !hasRecord(h.records(), audit.ActionBlocked, ctr.GetId(), policy.RuleUnjudged) {
		t.Errorf("no blocked audit record with rule %s for the refused container: %+v", policy.RuleUnjudged, h.records())
	}
}

func hasRecord(recs []audit.Record, action, id, rule string) bool {
	for _, r := range recs {
		if r.Action != action || r.Container.ID != id {
			continue
		}
		for _, v := range r.Violations {
			if v.Rule == rule {
				return true
			}
		}
	}
	return false
}

// With hook.onError: allow the same container is admitted, annotated with
// the rules nobody checked, and the plugin warns.
func TestNoHookPathOnErrorAllowAdmitsUnchecked(t *testing.T) {
	h := newHarness(t, harnessOpts{noHook: true, policyFile: "hook-allow.yaml"})
	pod, ctr := loadCapture(t, "default-kubelet")
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatalf("container refused under hook.onError allow: %v", err)
	}
	adj := rpl.GetAdjust()
	if len(adj.GetHooks().GetCreateRuntime()) != 0 {
		t.Errorf("hook injected without a hook path: %v", adj.GetHooks())
	}
	un := strings.Split(adj.GetAnnotations()[AnnotationUnchecked], ",")
	for _, want := range []string{"capabilities", "privileged"} {
		if !slices.Contains(un, want) {
			t.Errorf("%s annotation %v lacks %s", AnnotationUnchecked, un, want)
		}
	}
	if !strings.Contains(h.logs.String(), "admitted with rules unchecked") {
		t.Errorf("no warning for the unchecked container; logs:\n%s", h.logs.String())
	}
	if !hasRecord(h.records(), audit.ActionFlagged, ctr.GetId(), policy.RuleUnjudged) {
		t.Errorf("no flagged audit record with rule %s for the unchecked container: %+v", policy.RuleUnjudged, h.records())
	}
}

func TestIdentitySourceFromRuntimeName(t *testing.T) {
	for runtime, want := range map[string]string{"containerd": "containerd", "cri-o": "crio", "CRI-O": "crio", "": "none", "my-runtime": "none"} {
		if got := identitySource(runtime); got != want {
			t.Errorf("identitySource(%q) = %q, want %q", runtime, got, want)
		}
	}
}

// The validator's judgement of the container as it will run is what the
// injected hook is answered on: the service hands the validator's fields to
// the hook's question for that container ID, once. A container the
// validator refused is never remembered.
func TestValidatorJudgementHandedToHook(t *testing.T) {
	h := newHarness(t, harnessOpts{decisionSocket: true})
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	if _, err := h.create(pod, ctr); err != nil {
		t.Fatal(err)
	}
	w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	nriSeen := w.Seen
	w.Seen = policy.FieldsAll
	c := &decision.Client{Socket: h.decisionSock}
	resp, err := c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: w, ContainerID: ctr.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.AfterNRI || resp.NRIJudged != nriSeen || nriSeen == 0 {
		t.Fatalf("hook's question after the validator: afterNRI %v judged %v, want %v", resp.AfterNRI, policy.FieldNames(resp.NRIJudged), policy.FieldNames(nriSeen))
	}

	// (A host device: the validator judges devices itself, while a bind
	// mount is left to the hook, which resolves its symlinks.)
	pod2, ctr2 := loadCapture(t, "device-fuse")
	if _, err := h.create(pod2, ctr2); err == nil {
		t.Fatal("device-fuse admitted")
	}
	w2, err := ContainerWorkload(pod2, ctr2, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c.Decide(context.Background(), &decision.DecideRequest{ID: audit.NewUUID(), Workload: w2, ContainerID: ctr2.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if resp.AfterNRI || resp.NRIJudged != 0 {
		t.Fatalf("refused container remembered: %+v", resp)
	}
}

// A running container that started without patchgate's hook (patchgate was
// away: a pod tolerating missing NRI plugins) was judged by nobody on the
// rules NRI cannot see: Synchronize's record names them. One that carries
// the hook was judged in full by it at start and gets no second record.
func TestSynchronizeNamesUnjudgedRules(t *testing.T) {
	for _, hooked := range []bool{false, true} {
		h := newHarness(t, harnessOpts{})
		pod, ctr := loadCapture(t, "privileged")
		ctr.State = api.ContainerState_CONTAINER_RUNNING
		if hooked {
			ctr.Hooks = &api.Hooks{CreateRuntime: []*api.Hook{{Path: "/usr/local/bin/patchgate", Args: []string{"patchgate", "hook"}}}}
		}
		h.mu.Lock()
		h.runningPods, h.runningCtrs = []*api.PodSandbox{pod}, []*api.Container{ctr}
		h.mu.Unlock()
		h.restartRuntime()
		recs := h.records()
		if hooked {
			// The hook judged it in full at start and wrote its record.
			if len(recs) != 0 {
				t.Errorf("hooked container got a Synchronize record: %+v", recs)
			}
			continue
		}
		if len(recs) != 1 {
			t.Fatalf("hooked=%v: %d records", hooked, len(recs))
		}
		var unjudged *policy.Violation
		for i, v := range recs[0].Violations {
			if v.Rule == policy.RuleUnjudged {
				unjudged = &recs[0].Violations[i]
			}
		}
		if hooked {
			if unjudged != nil {
				t.Errorf("hooked container marked unjudged: %+v", unjudged)
			}
			continue
		}
		if unjudged == nil || unjudged.Action != policy.ActionWarn {
			t.Fatalf("no unjudged warning in %+v", recs[0].Violations)
		}
		for _, id := range recs[0].Deferred {
			if !strings.Contains(unjudged.Detail, id) {
				t.Errorf("deferred rule %s not named in %q", id, unjudged.Detail)
			}
		}
		if len(recs[0].Deferred) == 0 || !strings.Contains(unjudged.Detail, "started without patchgate's OCI hook") {
			t.Errorf("detail %q, deferred %v", unjudged.Detail, recs[0].Deferred)
		}
	}
}
