package hostpath

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mountT mounts and unmounts in t.Cleanup.
func mountT(t *testing.T, src, dst, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
		t.Skipf("mount %s on %s: %v (needs root)", src, dst, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
		}
	})
}

// TestOriginsRealMounts makes kubelet's subPath mounts for real in a
// scratch kubelet directory and resolves them as the hook does: the host's
// /etc bound (read-only, as kubelet does for a readOnly volume) onto
// volume-subpaths is /etc; an emptyDir subdirectory and a file of a tmpfs
// volume stay the pod's own.
func TestOriginsRealMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	tmp, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pod := tmp + "/kubelet/pods/5d0b6f0e-1c1a-4d6e-9d0a-3b8f4f2c7e11"
	etcDst := pod + "/volume-subpaths/host/c/0"
	dirDst := pod + "/volume-subpaths/scratch/c/1"
	fileDst := pod + "/volume-subpaths/cfg/c/2"
	empty := pod + "/volumes/kubernetes.io~empty-dir/scratch/data"
	cfg := pod + "/volumes/kubernetes.io~secret/cfg"
	for _, d := range []string{etcDst, dirDst, empty, cfg, filepath.Dir(fileDst)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(fileDst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mountT(t, "tmpfs", cfg, "tmpfs", 0)
	if err := os.WriteFile(cfg+"/key", []byte("v"), 0o644); err != nil {
		t.Fatal(err)
	}
	mountT(t, "/etc", etcDst, "", unix.MS_BIND)
	if err := unix.Mount("", etcDst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	mountT(t, empty, dirDst, "", unix.MS_BIND)
	mountT(t, cfg+"/key", fileDst, "", unix.MS_BIND)

	if mp, known := MountRootStatx(etcDst); !known || !mp {
		t.Errorf("statx %s: mount root %v, known %v", etcDst, mp, known)
	}
	if mp, known := MountRootStatx(pod); !known || mp {
		t.Errorf("statx %s: mount root %v, known %v", pod, mp, known)
	}
	reads := 0
	f := OriginsFunc("/", "/proc/self/mountinfo", false, func(p string) (bool, bool) {
		mp, known := MountRootStatx(p)
		if !known || mp {
			reads++
		}
		return mp, known
	})
	for _, c := range []struct{ p, want string }{
		{etcDst, "/etc"},
		{dirDst, empty},
		{fileDst, cfg + "/key"},
		{cfg, ""},
		{pod + "/etc-hosts", ""},
	} {
		got, _, err := f(c.p)
		first := ""
		if len(got) > 0 {
			first = got[0]
		}
		if err != nil || first != c.want {
			t.Errorf("origins of %s = %q, %v; want %q first", c.p, got, err, c.want)
		}
	}
	if reads != 4 {
		t.Errorf("the mount table was needed %d times, want 4 (only mount points)", reads)
	}
}
