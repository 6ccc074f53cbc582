//go:build e2e

package hooke2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRuncSubPath runs real runc containers whose bind sources are
// kubelet's subPath mounts, made for real in a scratch kubelet directory
// (pkg/volume/util/subpath doBindSubPath: <pod dir>/volume-subpaths/
// <volume>/<container>/<n>): the host's /etc bound read-only there, as for
// a hostPath / volume with subPath etc, is refused; an emptyDir
// subdirectory and a file of a tmpfs (configMap-like) volume run. The
// bundle sits in containerd's layout with CRI annotations and the hook runs
// with --identity-from containerd, so the pod's UID is trusted and the
// policy's kubeletDir admits the pod's own directory by name: only the
// mount table tells /etc apart.
func TestRuncSubPath(t *testing.T) {
	needTools(t, "runc")
	e := newEnv(t)
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const uid = "5d0b6f0e-1c1a-4d6e-9d0a-3b8f4f2c7e11"
	kubelet := filepath.Join(tmp, "kubelet")
	pod := filepath.Join(kubelet, "pods", uid)
	etcSub := pod + "/volume-subpaths/host/c/0"
	dirSub := pod + "/volume-subpaths/scratch/c/1"
	fileSub := pod + "/volume-subpaths/cfg/c/2"
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

	// The test policy with kubeletDir pointing at the scratch directory.
	polPath := filepath.Join(e.policyDir, "policy.yaml")
	body, err := os.ReadFile(polPath)
	if err != nil {
		t.Fatal(err)
	}
	withKubelet := strings.Replace(string(body), "hostPathMounts:      {action: enforce, ", "hostPathMounts:      {action: enforce, kubeletDir: "+kubelet+", ", 1)
	if withKubelet == string(body) {
		t.Fatal("policy: hostPathMounts line not found")
	}
	if err := os.WriteFile(polPath, []byte(withKubelet), 0o644); err != nil {
		t.Fatal(err)
	}

	rfs := rootfs(t)
	state := filepath.Join(tmp, "state", "io.containerd.runtime.v2.task", "k8s.io")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name     string
		src, dst string
		opts     []string
		want     []string
	}{
		{"subpath-host-etc", etcSub, "/a", []string{"rbind", "rprivate", "ro", "rro"},
			[]string{"[hostPathMounts]", "/a (from " + etcSub + ", shows /etc, contains protected"}},
		{"subpath-emptydir", dirSub, "/data", []string{"rbind", "rprivate", "rw"}, nil},
		{"subpath-configmap-file", fileSub, "/app.conf", []string{"rbind", "rprivate", "ro", "rro"}, nil},
	} {
		id := fmt.Sprintf("pg-%s-%d-%d", tc.name, i, time.Now().UnixNano())
		tweak := tweaks(setUser(1000), addMount("bind", tc.src, tc.dst, tc.opts...), func(s map[string]any) {
			// containerd's CRI annotations for a pod sandbox container;
			// the hook trusts them for a bundle in containerd's layout.
			s["annotations"] = map[string]any{
				"io.kubernetes.cri.container-type":    "sandbox",
				"io.kubernetes.cri.sandbox-id":        id,
				"io.kubernetes.cri.sandbox-name":      "subpath",
				"io.kubernetes.cri.sandbox-namespace": "default",
				"io.kubernetes.cri.sandbox-uid":       uid,
			}
			h := s["hooks"].(map[string]any)["createRuntime"].([]any)[0].(map[string]any)
			h["args"] = append(h["args"].([]string), "--identity-from", "containerd")
		})
		bundle := filepath.Join(state, id)
		if err := os.Rename(e.runcBundle(t, rfs, tweak), bundle); err != nil {
			t.Fatal(err)
		}
		out, err := e.runcRun(t, bundle, id)
		checkRefusal(t, tc.name, out, err, tc.want)
	}
}
