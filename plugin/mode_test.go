package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func TestModeFor(t *testing.T) {
	for _, tc := range []struct {
		nri   string
		mode  Mode
		known bool
	}{
		// What NRI's stub infers for containerd 1.7.26+, 2.0.x and 2.1.x.
		{"v0.8.0", ModeCreate, true},
		{"v0.3.0", ModeCreate, true}, // containerd 1.7.0 to 1.7.6
		{"v0.9.9", ModeCreate, true},
		{"v0.10.0", ModeValidator, true}, // containerd 2.2.0
		{"v0.11.0", ModeValidator, true}, // containerd 2.2.9
		{"v0.12.3", ModeValidator, true}, // containerd 2.4.2
		{"v1.0.0-rc.1", ModeValidator, true},
		{"v0.10.0+dirty", ModeValidator, true},
		{"unknown", ModeValidator, false},
		{"", ModeValidator, false},
		{"0.8.0", ModeValidator, false},
		{"v0.8", ModeValidator, false},
		{"v0.08.0", ModeValidator, false},
		{"v0.-1.0", ModeValidator, false},
	} {
		m, known := modeFor(tc.nri)
		if m != tc.mode || known != tc.known {
			t.Errorf("modeFor(%q) = %s, %t; want %s, %t", tc.nri, m, known, tc.mode, tc.known)
		}
	}
	// The event bits are NRI's: 0x2000 is what an NRI v0.8 runtime refuses.
	if validatorEvents&^createEvents != 0x2000 {
		t.Errorf("validation event bit = %#x, want 0x2000", uint32(validatorEvents&^createEvents))
	}
	if want, _ := api.ParseEventMask("RunPodSandbox", "CreateContainer", "PostCreateContainer"); createEvents != want {
		t.Errorf("createEvents = %s, want %s", createEvents.PrettyString(), want.PrettyString())
	}
}

func runtimeStatus(t testing.TB, h *harness) *service.RuntimeConnection {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, "status.json"))
	if err != nil {
		return nil
	}
	var st service.Status
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	return st.Runtime
}

func TestValidatorModeStatus(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	waitFor(t, func() bool {
		r := runtimeStatus(t, h)
		return r != nil && r.State == "connected"
	}, "runtime connected in the status file")
	r := runtimeStatus(t, h)
	if r.Mode != string(ModeValidator) || r.Plugin != "50-patchgate" || r.Runtime != "containerd" || r.RuntimeVersion != "v2.4.2" || len(r.Unseen) != 0 {
		t.Errorf("runtime status = %+v", r)
	}
}

// On a runtime without the validation event (NRI v0.8: containerd 1.7, 2.0,
// 2.1) patchgate decides in CreateContainer: an error there fails the
// create. The decision and its record say what that mode cannot see.
func TestCreateContainerMode(t *testing.T) {
	h := newHarness(t, harnessOpts{nriVersion: "v0.8.0"})
	waitFor(t, func() bool {
		r := runtimeStatus(t, h)
		return r != nil && r.State == "connected"
	}, "runtime connected in the status file")
	if r := runtimeStatus(t, h); r.Mode != string(ModeCreate) || r.NRIVersion != "v0.8.0" || !slices.Equal(r.Unseen, createModeUnseen) {
		t.Errorf("runtime status = %+v", r)
	}

	pod, ctr := loadCapture(t, "privileged")
	_, err := h.create(pod, ctr)
	if err == nil {
		t.Fatal("privileged container admitted in CreateContainer mode")
	}
	// Refused by the plugin's CreateContainer, not by a validator.
	if strings.Contains(err.Error(), "validator") || !strings.Contains(err.Error(), "patchgate: denied [") {
		t.Errorf("error = %q, want patchgate's refusal from CreateContainer", err)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Action != audit.ActionBlocked || recs[0].Mode != string(ModeCreate) || !slices.Equal(recs[0].Unseen, createModeUnseen) {
		t.Fatalf("audit = %+v", recs)
	}

	// A compliant container is admitted, with the hook injected.
	pod, ctr = loadCapture(t, "seccomp-unconfined")
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatalf("compliant container refused: %v", err)
	}
	if n := len(rpl.GetAdjust().GetHooks().GetCreateRuntime()); n != 1 {
		t.Errorf("%d hooks injected, want 1", n)
	}

	// A flagged one is admitted and annotated; its record is the hook's
	// (it judges the final spec), not a second one from here.
	pod, ctr = loadCapture(t, "default-kubelet")
	rpl, err = h.create(pod, ctr)
	if err != nil {
		t.Fatalf("root container refused under a warn policy: %v", err)
	}
	if ann := rpl.GetAdjust().GetAnnotations(); ann[AnnotationFlagged] != "true" || ann[AnnotationRules] != "runAsRoot" {
		t.Errorf("annotations = %v", ann)
	}
	if recs := h.records(); len(recs) != 1 {
		t.Errorf("a flagged container that the hook will judge got a record from the plugin: %+v", recs)
	}
}

// Without a hook the plugin is the last judge in CreateContainer mode too:
// it records what it flags.
func TestCreateContainerModeNoHookRecordsFlagged(t *testing.T) {
	h := newHarness(t, harnessOpts{nriVersion: "v0.8.0", noHook: true, policyFile: "hook-allow.yaml"})
	pod, ctr := loadCapture(t, "default-kubelet")
	if _, err := h.create(pod, ctr); err != nil {
		t.Fatalf("refused: %v", err)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Action != audit.ActionFlagged || recs[0].Mode != string(ModeCreate) {
		t.Fatalf("audit = %+v", recs)
	}
}

// With its index left to the default, patchgate re-registers last (99) on
// such a runtime, so it sees the other plugins' adjustments.
func TestCreateContainerModeMovesToLastIndex(t *testing.T) {
	h := newHarness(t, harnessOpts{nriVersion: "v0.8.0", defaultIdx: true})
	waitFor(t, func() bool {
		r := runtimeStatus(t, h)
		return r != nil && r.State == "connected"
	}, "runtime connected in the status file")
	if r := runtimeStatus(t, h); r.Plugin != "99-patchgate" || r.Mode != string(ModeCreate) {
		t.Errorf("runtime status = %+v", r)
	}
	if !strings.Contains(h.logs.String(), "re-registering as 99-patchgate") {
		t.Error("the move is not logged")
	}
	if strings.Contains(h.logs.String(), "REFUSED") {
		t.Error("the move was reported as a refusal")
	}
	pod, ctr := loadCapture(t, "privileged")
	if _, err := h.create(pod, ctr); err == nil || !strings.Contains(err.Error(), "patchgate: denied") {
		t.Fatalf("after the move patchgate is not deciding: %v", err)
	}
	// On a validator runtime the default index stays.
	h2 := newHarness(t, harnessOpts{defaultIdx: true})
	waitFor(t, func() bool {
		r := runtimeStatus(t, h2)
		return r != nil && r.State == "connected"
	}, "runtime connected in the status file")
	if r := runtimeStatus(t, h2); r.Plugin != "50-patchgate" {
		t.Errorf("runtime status = %+v", r)
	}
}

// A container that already carries patchgate's hook (the runtime's base
// spec puts it there, to fail closed while patchgate is down) gets no
// second one: one hook, one judgement, one record.
func TestBaseSpecHookNotInjectedTwice(t *testing.T) {
	for _, tc := range []struct{ nri, basePath string }{
		{"", "/usr/local/bin/patchgate-hook"}, {"v0.8.0", "/usr/local/bin/patchgate-hook"},
		// The base spec names the full binary, the plugin the thin hook.
		{"", "/usr/local/bin/patchgate"}, {"v0.8.0", "/usr/local/bin/patchgate"},
	} {
		t.Run("nri="+tc.nri+tc.basePath, func(t *testing.T) {
			h := newHarness(t, harnessOpts{nriVersion: tc.nri, hookPath: "/usr/local/bin/patchgate-hook"})
			pod, ctr := loadCapture(t, "seccomp-unconfined")
			ctr.Hooks = &api.Hooks{CreateRuntime: []*api.Hook{{Path: tc.basePath, Args: []string{tc.basePath, "hook", "--identity-from=containerd"}}}}
			rpl, err := h.create(pod, ctr)
			if err != nil {
				t.Fatal(err)
			}
			if hooks := rpl.GetAdjust().GetHooks().GetCreateRuntime(); len(hooks) != 0 {
				t.Errorf("hook injected again: %v", hooks)
			}
			if _, ok := rpl.GetAdjust().GetAnnotations()[AnnotationUnchecked]; ok {
				t.Error("container with the base-spec hook marked unchecked")
			}
		})
	}
	// Another program's hook, or one elsewhere, is not patchgate's.
	h := newHarness(t, harnessOpts{hookPath: "/usr/local/bin/patchgate-hook"})
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	ctr.Hooks = &api.Hooks{CreateRuntime: []*api.Hook{
		{Path: "/opt/other/patchgate", Args: []string{"patchgate", "hook"}},
		{Path: "/usr/local/bin/other", Args: []string{"other", "hook"}},
	}}
	rpl, err := h.create(pod, ctr)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rpl.GetAdjust().GetHooks().GetCreateRuntime()); n != 1 {
		t.Errorf("%d hooks injected next to foreign ones, want 1", n)
	}
}

// A registration the runtime closes after Configure is a refusal: ERROR,
// state refused in the status, and for a runtime of unknown NRI version
// the next attempt decides in CreateContainer.
func TestRefusedRegistrationIsLoud(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := &conn{runtime: "containerd", version: "v1.7.35+unknown", nriVersion: "unknown", configured: true}
	c.mode, c.known = modeFor(c.nriVersion)
	h.p.afterServe(c, nil)
	if !h.p.noValidator.Load() {
		t.Error("an unknown runtime that refused the validator is not retried in CreateContainer mode")
	}
	r := h.p.lastState.Load()
	if r == nil || r.State != "refused" || r.Mode != string(ModeHookOnly) || !strings.Contains(r.Reason, "ValidateContainerAdjustment") {
		t.Errorf("published state = %+v", r)
	}
	if !strings.Contains(h.logs.String(), `level=error msg="the container runtime REFUSED the patchgate plugin`) {
		t.Errorf("no ERROR line; logs:\n%s", h.logs.String())
	}
	// The next Configure on that runtime subscribes without the validator.
	c2 := &conn{nriVersion: "unknown"}
	ev, err := h.p.configureMode(c2)
	if err != nil || c2.mode != ModeCreate || ev != createEvents {
		t.Errorf("configureMode after a refusal = %s, %v, mode %s", ev.PrettyString(), err, c2.mode)
	}
	// A known validator runtime keeps the validator even then.
	c3 := &conn{nriVersion: "v0.12.3"}
	if ev, err := h.p.configureMode(c3); err != nil || ev != validatorEvents {
		t.Errorf("configureMode(v0.12.3) = %s, %v", ev.PrettyString(), err)
	}
}

// containerd sends the spec's seccomp filter in NRI's container only from
// 2.3: before, a container without one there is unseen, not unconfined.
func TestSeccompSeenOnlyWhereTheRuntimeSendsIt(t *testing.T) {
	for _, tc := range []struct {
		runtime, version string
		want             bool
	}{
		{"containerd", "v2.4.2", true},
		{"containerd", "v2.3.0", true},
		{"containerd", "v2.2.9", false},
		{"containerd", "v2.1.9", false},
		{"containerd", "v1.7.35", false},
		{"containerd", "1.7.35+unknown", false},
		{"cri-o", "v1.34.0", false},
		{"", "", false},
	} {
		if got := sendsSeccomp(tc.runtime, tc.version); got != tc.want {
			t.Errorf("sendsSeccomp(%q, %q) = %t, want %t", tc.runtime, tc.version, got, tc.want)
		}
	}
	p := &Plugin{}
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	if ctr.GetLinux().GetSeccompPolicy() != nil {
		t.Fatal("capture has a seccomp filter")
	}
	w, err := p.containerWorkload(pod, ctr)
	if err != nil {
		t.Fatal(err)
	}
	if w.Seen.Has(policy.FieldSeccomp) {
		t.Error("on a runtime that does not send the filter, its absence counts as seen")
	}
	p.seccompVisible.Store(true)
	if w, _ = p.containerWorkload(pod, ctr); !w.Seen.Has(policy.FieldSeccomp) || !w.SeccompUnconfined {
		t.Error("on containerd >= 2.3 a container without a filter is not judged unconfined")
	}
	// A filter that is there is seen on any runtime.
	_, withFilter := loadCapture(t, "default-kubelet")
	withFilter.Linux.SeccompPolicy = &api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ERRNO"}
	p.seccompVisible.Store(false)
	if w, _ = p.containerWorkload(pod, withFilter); !w.Seen.Has(policy.FieldSeccomp) {
		t.Error("a filter NRI shows is not judged")
	}
}

// A running container that carries patchgate's hook was judged and audited
// by it at start: Synchronize does not write a second, NRI-only record.
func TestSynchronizeSkipsHookedContainers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod, ctr := loadCapture(t, "privileged")
	ctr.State = api.ContainerState_CONTAINER_RUNNING
	ctr.Hooks = &api.Hooks{CreateRuntime: []*api.Hook{{Path: "/usr/local/bin/patchgate", Args: []string{"patchgate", "hook"}}}}
	h.mu.Lock()
	h.runningPods, h.runningCtrs = []*api.PodSandbox{pod}, []*api.Container{ctr}
	h.mu.Unlock()
	h.restartRuntime()
	if recs := h.records(); len(recs) != 0 {
		t.Fatalf("audit = %+v, want no record for a container patchgate's hook judged", recs)
	}
	if !strings.Contains(h.logs.String(), "running container does not comply") {
		t.Error("the non-compliant running container is not logged")
	}
}

// Every runtime handler whose containers arrive without patchgate's hook in
// the base spec is named in the status, loudly on a runtime without the
// validator.
func TestBaseSpecMissingPerHandler(t *testing.T) {
	h := newHarness(t, harnessOpts{nriVersion: "v0.8.0", hookPath: "/usr/local/bin/patchgate-hook"})
	withBase := func(ctr *api.Container) {
		ctr.Hooks = &api.Hooks{CreateRuntime: []*api.Hook{{Path: "/usr/local/bin/patchgate-hook", Args: []string{"patchgate-hook", "hook"}}}}
	}
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	pod.RuntimeHandler = "runc"
	withBase(ctr)
	if _, err := h.create(pod, ctr); err != nil {
		t.Fatal(err)
	}
	pod2, ctr2 := loadCapture(t, "seccomp-unconfined")
	pod2.RuntimeHandler = "nvidia"
	ctr2.Id += "-2"
	if _, err := h.create(pod2, ctr2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r := runtimeStatus(t, h)
		return r != nil && slices.Equal(r.BaseSpecMissing, []string{"nvidia"})
	}, "status baseSpecMissing [nvidia]")
	if !strings.Contains(h.logs.String(), `level=error msg="runtime handler nvidia has no patchgate hook in its base_runtime_spec`) {
		t.Errorf("no ERROR line; logs:\n%s", h.logs.String())
	}
	if n := strings.Count(h.logs.String(), "runtime handler nvidia has no patchgate hook"); n != 1 {
		t.Errorf("said %d times, want once", n)
	}
	if _, err := h.create(pod2, ctr2); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(h.logs.String(), "runtime handler nvidia has no patchgate hook"); n != 1 {
		t.Errorf("said %d times after a second container, want once", n)
	}
}
