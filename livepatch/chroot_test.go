package livepatch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestToolsChroot runs a provider tool the way a DaemonSet does
// (--host-root /host --tools-chroot): inside chroot(host root), where it
// sees the host's /etc/os-release and its own state files at their real
// paths. The host tree gets busybox-static as its /bin/sh.
func TestToolsChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("chroot needs root; CI runs as root")
		}
		t.Skip("chroot needs root")
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("busybox-static (scripts/install-deps.sh): %v", err)
		}
		t.Skipf("busybox-static not installed: %v", err)
	}
	root := copyTree(t, "rhel8-kpatch")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "cat", "grep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	// This kpatch only works where / is the host tree: it checks the host's
	// os-release and reads its recording by absolute path.
	script := "#!/bin/sh\ngrep -q 'ID=\"rhel\"' /etc/os-release || { echo 'not in the host root' >&2; exit 3; }\ncat /recorded/kpatch-list.out\n"
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/kpatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	r, err := NewReader(WithHostRoot(root), WithChroot(true), WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	k := r.Read(context.Background())
	if !reflect.DeepEqual(k.Providers, []string{"sysfs", "kpatch"}) || len(k.Unknown) != 0 {
		t.Fatalf("chroot: providers %v unknown %+v", k.Providers, k.Unknown)
	}
	want := readHost(t, "rhel8-kpatch")
	if !reflect.DeepEqual(k.Patches, want.Patches) || *k.UpdatesPending != *want.UpdatesPending {
		t.Errorf("chroot read %+v, direct read of the same tree %+v", k.Patches, want.Patches)
	}

	// Without chroot the same tool runs in our own root and fails: its
	// part is unknown, not empty.
	r = must(NewReader(WithHostRoot(root), WithClock(func() time.Time { return fixedNow })))
	k = r.Read(context.Background())
	if len(k.Unknown) == 0 || !strings.Contains(k.Unknown[0].Reason, "not in the host root") {
		t.Errorf("direct: unknown %+v", k.Unknown)
	}
}
