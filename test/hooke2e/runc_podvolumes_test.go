//go:build e2e

package hooke2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRuncPodVolumes runs real runc containers whose bind sources are
// kubelet volume directories of the pod's own, mounted for real in a
// scratch kubelet directory: an ext4 image on a loop device at
// volumes/kubernetes.io~iscsi/disk (what kubelet's iSCSI plugin makes of an
// inline volume whose portal the pod's author picks) is refused; a tmpfs
// configMap-like volume and a plain emptyDir directory run; kubelet's
// subPath bind of a directory of the disk is refused too. As in
// TestRuncSubPath the bundle is in containerd's layout with CRI
// annotations, so the pod's UID is trusted and the name alone would admit
// all three: only the mount table tells the disk apart.
func TestRuncPodVolumes(t *testing.T) {
	needTools(t, "runc", "mkfs.ext4", "losetup")
	e := newEnv(t)
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const uid = "0c9d3b2a-6e5f-4a1b-9c8d-7e6f5a4b3c2d"
	kubelet := filepath.Join(tmp, "kubelet")
	pod := filepath.Join(kubelet, "pods", uid)
	disk := pod + "/volumes/kubernetes.io~iscsi/disk"
	cfg := pod + "/volumes/kubernetes.io~configmap/cfg"
	empty := pod + "/volumes/kubernetes.io~empty-dir/scratch"
	for _, d := range []string{disk, cfg, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(tmp, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", loop, err, out)
		}
	})
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
	mount(loop, disk, "ext4", 0)
	mount("tmpfs", cfg, "tmpfs", 0)
	// kubelet's subPath of that volume (doBindSubPath): a bind of a
	// directory of the disk onto volume-subpaths.
	diskSub := pod + "/volume-subpaths/disk/c/0"
	if err := os.MkdirAll(diskSub, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(disk+"/lost+found", diskSub, "", unix.MS_BIND)

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
		{"iscsi-ext4-loop", disk, "/disk", []string{"rbind", "rprivate", "rw"},
			[]string{"[hostPathMounts]", "/disk (from " + disk + ", a ext4 filesystem of " + loop + " mounted in the pod's directory", "kubernetes.io~iscsi"}},
		{"iscsi-subdirectory", disk + "/lost+found", "/disk", []string{"rbind", "rprivate", "rw"},
			[]string{"[hostPathMounts]", "a ext4 filesystem of " + loop}},
		{"iscsi-subpath", diskSub, "/disk", []string{"rbind", "rprivate", "rw"},
			[]string{"[hostPathMounts]", "a subPath of a ext4 filesystem of " + loop + " (kubelet volume plugin kubernetes.io~iscsi)"}},
		{"configmap-tmpfs", cfg, "/cfg", []string{"rbind", "rprivate", "ro", "rro"}, nil},
		{"emptydir", empty, "/scratch", []string{"rbind", "rprivate", "rw"}, nil},
	} {
		id := fmt.Sprintf("pg-%s-%d-%d", tc.name, i, time.Now().UnixNano())
		tweak := tweaks(setUser(1000), addMount("bind", tc.src, tc.dst, tc.opts...), func(s map[string]any) {
			s["annotations"] = map[string]any{
				"io.kubernetes.cri.container-type":    "sandbox",
				"io.kubernetes.cri.sandbox-id":        id,
				"io.kubernetes.cri.sandbox-name":      "podvolumes",
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
