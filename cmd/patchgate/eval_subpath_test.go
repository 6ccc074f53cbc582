package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// TestEvalHostRootSubPath: with --host-root, a bind source that is a mount
// point in <host-root>/proc/1/mountinfo is judged by the host path it shows.
// The table is internal/mountinfo/testdata/kubelet-subpath.mountinfo, taken
// on the test machine with kubelet's subPath mounts made in a scratch
// kubelet directory: hostPath / with subPath etc is the host's /etc
// (refused by baseline.yaml); an emptyDir subdirectory and a file of a
// tmpfs (configMap-like) volume stay the pod's own (admitted).
func TestEvalHostRootSubPath(t *testing.T) {
	const (
		kubelet = "/tmp/pgk-capture/kubelet"
		uid     = "0f4c1a52-7d1e-4c55-9a3b-1c2d3e4f5a6b"
		pod     = kubelet + "/pods/" + uid
	)
	root := t.TempDir()
	table, err := os.ReadFile("../../internal/mountinfo/testdata/kubelet-subpath.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc/1/mountinfo"), table, 0o444); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../examples/policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol := strings.Replace(string(raw), "hostPathMounts:      {action: enforce}",
		"hostPathMounts:      {action: enforce, kubeletDir: "+kubelet+"}", 1)
	if pol == string(raw) {
		t.Fatal("baseline.yaml: hostPathMounts line not found")
	}
	polPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(polPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}

	eval := func(dst, src string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(specFixtures, "hostPathMounts-pass-runtime", "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var spec map[string]any
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		spec["annotations"].(map[string]any)["io.kubernetes.cri.sandbox-uid"] = uid
		spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
			"destination": dst, "type": "bind", "source": src, "options": []any{"rbind", "rprivate", "ro", "rro"}})
		if data, err = json.Marshal(spec); err != nil {
			t.Fatal(err)
		}
		specPath := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(specPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := dispatch([]string{"eval", "--policy", polPath, "--spec", specPath, "--identity-from", "containerd", "--host-root", root, "-o", "json", "--node-name", "n"}, &out, &errb)
		var d policy.Decision
		if err := json.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatalf("exit %d: %v\n%s\n%s", code, err, out.String(), errb.String())
		}
		for _, v := range d.Violations {
			if v.Rule == policy.RuleHostPathMounts {
				return v.Detail
			}
		}
		return ""
	}
	if got := eval("/host-etc", pod+"/volume-subpaths/host/app/0"); !strings.Contains(got, "/host-etc (from "+pod+"/volume-subpaths/host/app/0, shows /etc, contains protected") {
		t.Errorf("hostPath / subPath etc: %q", got)
	}
	for _, src := range []string{pod + "/volume-subpaths/scratch/app/1", pod + "/volume-subpaths/cfg/app/2"} {
		if got := eval("/data", src); strings.Contains(got, "/data") {
			t.Errorf("%s: %q", src, got)
		}
	}
	// ".." out of the subPath mount point: the pod's volumes directory,
	// no mount point.
	if got := eval("/data", pod+"/volume-subpaths/host/app/0/../../../../volumes"); strings.Contains(got, "/data") {
		t.Errorf("a plain directory of the pod: %q", got)
	}
}
