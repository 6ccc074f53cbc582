package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
	"golang.org/x/sys/unix"
)

// TestBuildWorkloadSubPathMounts makes kubelet's subPath mounts for real
// (a scratch kubelet directory in a temp dir: the host's /etc bound
// read-only onto volume-subpaths, as for hostPath / with subPath etc; an
// emptyDir subdirectory; a file of a tmpfs volume), puts their paths in
// the recorded containerd spec as bind sources, and judges what
// BuildWorkload makes of them under baseline.yaml with kubeletDir pointing
// at the scratch directory and the pod's UID trusted (--identity-from
// containerd).
func TestBuildWorkloadSubPathMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kubelet := tmp + "/kubelet"
	pod := kubelet + "/pods/uid-shop-web-0" // the recorded spec's pod UID
	etcSub := pod + "/volume-subpaths/host/web/0"
	dirSub := pod + "/volume-subpaths/scratch/web/1"
	fileSub := pod + "/volume-subpaths/cfg/web/2"
	empty := pod + "/volumes/kubernetes.io~empty-dir/scratch/data"
	cfg := pod + "/volumes/kubernetes.io~configmap/cfg"
	for _, d := range []string{etcSub, dirSub, empty, cfg, filepath.Dir(fileSub)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(fileSub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mount := func(src, dst, fstype string, flags uintptr) {
		t.Helper()
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			t.Fatalf("mount %s on %s: %v", src, dst, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dst, err)
			}
		})
	}
	mount("tmpfs", cfg, "tmpfs", 0)
	if err := os.WriteFile(cfg+"/app.conf", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mount("/etc", etcSub, "", unix.MS_BIND)
	if err := unix.Mount("", etcSub, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	mount(empty, dirSub, "", unix.MS_BIND)
	mount(cfg+"/app.conf", fileSub, "", unix.MS_BIND)

	raw, err := os.ReadFile(filepath.Join("..", "examples", "policies", "baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pol := strings.Replace(string(raw), "hostPathMounts:      {action: enforce}",
		"hostPathMounts:      {action: enforce, kubeletDir: "+kubelet+"}", 1)
	if pol == string(raw) {
		t.Fatal("baseline.yaml: hostPathMounts line not found")
	}
	p, err := policy.LoadBytes("baseline.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}

	judge := func(dst, src string, ro bool) (*policy.Workload, policy.Decision) {
		t.Helper()
		stateJSON, _ := containerdBundle(t, false)
		st, err := ParseState([]byte(stateJSON))
		if err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(st.Bundle, "config.json")
		var spec map[string]any
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		opts := []any{"rbind", "rprivate", "rw"}
		if ro {
			opts = []any{"rbind", "rprivate", "ro", "rro"}
		}
		// As containerd's CRI writes a kubelet volume mount.
		spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
			"destination": dst, "type": "bind", "source": src, "options": opts})
		if data, err = json.Marshal(spec); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		w, err := BuildWorkload(st, t.TempDir(), IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if w.Pod.UID != "uid-shop-web-0" {
			t.Fatalf("pod UID %q not trusted", w.Pod.UID)
		}
		return w, policy.Evaluate(p, w, nil, time.Now())
	}
	hostPath := func(d policy.Decision) string {
		for _, v := range d.Violations {
			if v.Rule == policy.RuleHostPathMounts {
				return v.Detail
			}
		}
		return ""
	}

	// hostPath / + subPath etc, readOnly: the host's /etc.
	w, d := judge("/host-etc", etcSub, true)
	last := w.Mounts[len(w.Mounts)-1]
	if len(last.Origins) == 0 || last.Origins[0] != "/etc" {
		t.Errorf("origins %q, want /etc first (error %q)", last.Origins, last.ResolveError)
	}
	if v := hostPath(d); d.Verdict != policy.Deny || !strings.Contains(v, "/host-etc (from "+etcSub+", shows /etc, contains protected") {
		t.Errorf("hostPath / subPath etc: %s %q", d.Verdict, v)
	}
	// The pod's own volumes with a subPath stay admitted.
	for _, c := range []struct{ src, want string }{
		{dirSub, empty},
		{fileSub, cfg + "/app.conf"},
	} {
		w, d := judge("/data", c.src, false)
		last := w.Mounts[len(w.Mounts)-1]
		if len(last.Origins) != 1 || last.Origins[0] != c.want || last.ResolveError != "" {
			t.Errorf("%s: origins %q (%s), want %q", c.src, last.Origins, last.ResolveError, c.want)
		}
		// (The recorded spec's runtime files are not under this policy's
		// runtimeDirs: only the subPath mount, /data, counts here.)
		if v := hostPath(d); strings.Contains(v, "/data") {
			t.Errorf("%s: refused: %s", c.src, v)
		}
	}
}
