package running

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
)

// The containerd-cri fixture: test/e2e TestEvalRunning on containerd
// v2.4.2 (PATCHGATE_CAPTURE_RUNNING): pod e2e/web with app (uid 1000)
// and rooty (uid 0), privileged pod e2e/priv with priv (uid 0), all
// running; the shim's runc root /tmp/pge2e-334568005/runc (options.json).
const (
	ctrdState = "/tmp/pge2e-334568005/state"
	ctrdApp   = "6cd370dea66d04e93f0d672fa70e8ee0b91576e69ff2ea53ca2335b02d681c96"
	ctrdRooty = "56409133dbe48fe14a0fd825b66138382595dd1c2d88b610515435e923eb2ad6"
	ctrdPriv  = "2a4d85453064952db5b9d029dd8bf75057b8614aaf7b9f93847250f0a49454c7"
	ctrdWeb   = "cec9f9b28c0be3ac2e310ec4af41415ff34fc6c4c70980de97030faa994e05ab"
	ctrdPPod  = "cb39a616a2514ec5e66174d0b0c6ac931f62a4b2e1dca998ec5cb4b618443854"
)

func ctrdOptions(root string) Options {
	return Options{HostRoot: root, ContainerdStates: []string{ctrdState}}
}

func TestContainerdCRI(t *testing.T) {
	root := tree(t, "containerd-cri")
	rep := runOn(t, ctrdOptions(root))
	type want struct {
		name, outcome string
		rules         []string
		sandbox       bool
	}
	wants := map[string]want{
		ctrdApp:   {"e2e/web/app", OutcomeAdmit, nil, false},
		ctrdRooty: {"e2e/web/rooty", OutcomeRefuse, []string{"runAsRoot"}, false},
		ctrdPriv:  {"e2e/priv/priv", OutcomeRefuse, []string{"privileged", "runAsRoot"}, false},
		ctrdWeb:   {"e2e/web", OutcomeAdmit, nil, true},
		ctrdPPod:  {"e2e/priv", OutcomeAdmit, nil, true},
	}
	if len(rep.Containers) != len(wants) {
		t.Fatalf("%d containers: %+v", len(rep.Containers), rows(rep))
	}
	for _, c := range rep.Containers {
		w, ok := wants[c.ID]
		if !ok {
			t.Errorf("unexpected %s", c.ID)
			continue
		}
		if c.Runtime != RuntimeContainerd || c.Namespace != "k8s.io" || c.Status != StatusRunning || c.Pid <= 0 {
			t.Errorf("%s: %s/%s %s pid %d", w.name, c.Runtime, c.Namespace, c.Status, c.Pid)
		}
		if c.Name != w.name || c.Sandbox != w.sandbox || c.Candidate.Outcome != w.outcome || !slices.Equal(c.Candidate.Rules, w.rules) || c.Candidate.Error != "" {
			t.Errorf("%s: %q sandbox %t candidate %+v", w.name, c.Name, c.Sandbox, c.Candidate)
		}
		// The refusal's one line, as the node would give it: the rule and
		// the pod's field to change (it came from a pod).
		switch {
		case w.outcome == OutcomeAdmit && c.Candidate.Message != "":
			t.Errorf("%s: admitted with a message %q", w.name, c.Candidate.Message)
		case w.outcome == OutcomeRefuse && (!strings.Contains(c.Candidate.Message, "[runAsRoot]") || !strings.Contains(c.Candidate.Message, "securityContext.runAs")):
			t.Errorf("%s: message %q does not name runAsRoot and the pod's securityContext", w.name, c.Candidate.Message)
		}
		if w.sandbox {
			// Judged as RunPodSandbox judges the pod: the pod rule only,
			// never runAsRoot for the pause process.
			for _, v := range c.Candidate.Decision.Violations {
				if v.Rule != "hostNamespaces" {
					t.Errorf("%s: pod sandbox judged by %s", w.name, v.Rule)
				}
			}
		}
	}
}

func TestContainerdStateProblems(t *testing.T) {
	task := filepath.Join(ctrdState, "io.containerd.runtime.v2.task/k8s.io")
	runcState := "/tmp/pge2e-334568005/runc/k8s.io"
	find := func(rep *Report, id string) *Result {
		for i := range rep.Containers {
			if rep.Containers[i].ID == id {
				return &rep.Containers[i]
			}
		}
		return nil
	}
	t.Run("no runc state: judged, status unknown", func(t *testing.T) {
		root := tree(t, "containerd-cri")
		if err := os.RemoveAll(filepath.Join(root, runcState, ctrdRooty)); err != nil {
			t.Fatal(err)
		}
		c := find(runOn(t, ctrdOptions(root)), ctrdRooty)
		if c == nil || c.Status != StatusUnknown || c.Candidate.Outcome != OutcomeRefuse || c.Candidate.Error != "" {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("runc state names another bundle", func(t *testing.T) {
		root := tree(t, "containerd-cri")
		b, err := os.ReadFile(filepath.Join(root, runcState, ctrdApp, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), "bundle="+filepath.Join(task, ctrdApp), "bundle=/tmp/elsewhere"))
		if err := os.WriteFile(filepath.Join(root, runcState, ctrdApp, "state.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := find(runOn(t, ctrdOptions(root)), ctrdApp)
		if c == nil || c.Candidate.Outcome != OutcomeRefuse || !strings.Contains(c.Candidate.Error, "names bundle /tmp/elsewhere") {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("bundle a symlink", func(t *testing.T) {
		root := tree(t, "containerd-cri")
		b := filepath.Join(root, task, ctrdApp)
		if err := os.Rename(b, filepath.Join(root, "moved")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(root, "moved"), b); err != nil {
			t.Fatal(err)
		}
		c := find(runOn(t, ctrdOptions(root)), ctrdApp)
		if c == nil || c.Candidate.Outcome != OutcomeRefuse || !strings.Contains(c.Candidate.Error, "symlink; not followed") {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("an application container that claims to be a sandbox", func(t *testing.T) {
		// container-type=sandbox on a container whose sandbox-id is its
		// pod's: judged in full, never as a pod.
		root := tree(t, "containerd-cri")
		p := filepath.Join(root, task, ctrdRooty, "config.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), `"io.kubernetes.cri.container-type":"container"`, `"io.kubernetes.cri.container-type":"sandbox"`, 1)
		if s == string(b) {
			t.Fatal("fixture has no container-type annotation")
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		c := find(runOn(t, ctrdOptions(root)), ctrdRooty)
		if c == nil || c.Sandbox || c.Candidate.Outcome != OutcomeRefuse {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("init process gone: skipped", func(t *testing.T) {
		root := tree(t, "containerd-cri")
		b, _ := os.ReadFile(filepath.Join(root, task, ctrdApp, "init.pid"))
		if err := os.RemoveAll(filepath.Join(root, "proc", string(b))); err != nil {
			t.Fatal(err)
		}
		rep := runOn(t, ctrdOptions(root))
		if find(rep, ctrdApp) != nil || len(rep.Skipped) != 1 || rep.Skipped[0].ID != ctrdApp || rep.Skipped[0].Namespace != "k8s.io" {
			t.Fatalf("skipped %+v", rep.Skipped)
		}
	})
}

// The NRI plugin and the hook each write a record for one admission: the
// container's line shows both, merged.
func TestAuditRecordsMerged(t *testing.T) {
	at := func(s string) audit.Time {
		tm, _ := time.Parse(time.RFC3339, s)
		return audit.Time{Time: tm}
	}
	recs := []audit.Record{
		{Time: at("2026-12-02T10:00:00Z"), Source: "nri", Action: "blocked", Container: audit.Container{ID: "c1"}, Violations: []policy.Violation{{Rule: "hostPathMounts"}}},
		{Time: at("2026-12-02T16:34:37Z"), Source: "nri", Action: "allowed", Container: audit.Container{ID: "c1"}, Violations: []policy.Violation{{Rule: "runAsRoot"}}, Policy: policy.PolicyRef{Name: "old"}},
		{Time: at("2026-12-02T16:34:38Z"), Source: "hook", Action: "flagged", Container: audit.Container{ID: "c1"}, Violations: []policy.Violation{{Rule: "apparmor"}, {Rule: "privilegeEscalation"}}, Policy: policy.PolicyRef{Name: "audit-only"}},
		{Time: at("2026-12-02T16:34:39Z"), Source: "hook", Action: "allowed", Container: audit.Container{ID: "c2"}},
	}
	m := LatestRecords(recs)
	r := summarizeRecord(m["c1"])
	if r.Action != "flagged" || !slices.Equal(r.Rules, []string{"apparmor", "privilegeEscalation", "runAsRoot"}) ||
		!slices.Equal(r.Sources, []string{"hook", "nri"}) || r.Policy != "audit-only" || !r.Time.Equal(recs[2].Time.Time) {
		t.Errorf("%+v", r)
	}
	if len(m["c2"]) != 1 {
		t.Errorf("c2: %v", m["c2"])
	}
}
