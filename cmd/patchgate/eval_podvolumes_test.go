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

// TestEvalHostRootPodVolumes: with --host-root, a bind source under the
// pod's kubelet directory is judged by the mount that backs it in
// <host-root>/proc/1/mountinfo (internal/mountinfo/testdata/
// kubelet-podvolumes.mountinfo, taken on the test machine): the ext4 image
// on a loop device at kubernetes.io~iscsi/disk and the bind of /etc are
// refused by baseline.yaml; the tmpfs configMap, the plain emptyDir and the
// CSI-like volume (kubernetes.io~csi, trusted by default) are admitted.
func TestEvalHostRootPodVolumes(t *testing.T) {
	const (
		kubelet = "/tmp/pgk-podvol/kubelet"
		uid     = "7b3e9c10-2f4a-4d6b-8e1c-5a6b7c8d9e0f"
		pod     = kubelet + "/pods/" + uid
	)
	root := t.TempDir()
	table, err := os.ReadFile("../../internal/mountinfo/testdata/kubelet-podvolumes.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// The host's directories, so that --host-root resolves the sources.
	for _, d := range []string{"proc/1", pod + "/volumes/kubernetes.io~iscsi/disk", pod + "/volumes/kubernetes.io~configmap/cfg",
		pod + "/volumes/kubernetes.io~empty-dir/scratch", pod + "/volumes/kubernetes.io~csi/pv-data/mount", pod + "/volumes/kubernetes.io~hostpathlike/etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
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
	eval := func(src string) string {
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
			"destination": "/v", "type": "bind", "source": src, "options": []any{"rbind", "rprivate", "ro", "rro"}})
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
	for src, want := range map[string]string{
		pod + "/volumes/kubernetes.io~iscsi/disk":       "/v (from " + pod + "/volumes/kubernetes.io~iscsi/disk, a ext4 filesystem of /dev/loop0 mounted in the pod's directory",
		pod + "/volumes/kubernetes.io~hostpathlike/etc": "/v (from " + pod + "/volumes/kubernetes.io~hostpathlike/etc, a ext4 filesystem of /dev/vda, shows /etc, contains protected",
	} {
		if got := eval(src); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", src, got, want)
		}
	}
	for _, src := range []string{pod + "/volumes/kubernetes.io~configmap/cfg", pod + "/volumes/kubernetes.io~empty-dir/scratch", pod + "/volumes/kubernetes.io~csi/pv-data/mount"} {
		if got := eval(src); strings.Contains(got, "/v ") {
			t.Errorf("%s: %q", src, got)
		}
	}
}
