package hostpath

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

const capturePod = "/tmp/pgk-capture/kubelet/pods/0f4c1a52-7d1e-4c55-9a3b-1c2d3e4f5a6b"

func fixtureMounts(t *testing.T, name string) *Mounts {
	t.Helper()
	data, err := os.ReadFile("../mountinfo/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMounts(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOriginKubeletSubpath traces the real subPath-like binds of the
// captured fixture (see internal/mountinfo/testdata).
func TestOriginKubeletSubpath(t *testing.T) {
	m := fixtureMounts(t, "kubelet-subpath.mountinfo")
	for _, c := range []struct{ p, want string }{
		// hostPath / + subPath etc (two containers binding it: the
		// sibling bind of the same root is not where it comes from).
		{capturePod + "/volume-subpaths/host/app/0", "/etc"},
		{capturePod + "/volume-subpaths/host/side car/0", "/etc"},
		// emptyDir subPath: a directory of the root filesystem.
		{capturePod + "/volume-subpaths/scratch/app/1", capturePod + "/volumes/kubernetes.io~empty-dir/scratch/data"},
		// configMap-like subPath: a file in the pod's tmpfs volume.
		{capturePod + "/volume-subpaths/cfg/app/2", capturePod + "/volumes/kubernetes.io~configmap/cfg/..2026_12_02_09_00_00.123/app.conf"},
		// A whole filesystem's mount point, and no mount point at all.
		{capturePod + "/volumes/kubernetes.io~configmap/cfg", capturePod + "/volumes/kubernetes.io~configmap/cfg"},
		{"/dev/shm", "/dev/shm"},
		{"/etc", "/etc"},
		{capturePod + "/volume-subpaths/host/app", capturePod + "/volume-subpaths/host/app"},
	} {
		got, err := m.Origin(c.p)
		if err != nil || got != c.want {
			t.Errorf("Origin(%s) = %q, %v; want %q", c.p, got, err, c.want)
		}
	}
}

func TestOriginHidden(t *testing.T) {
	for _, c := range []struct{ name, table, p, want string }{
		{"file of a filesystem mounted nowhere else", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 8:17 /secret /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mounted nowhere else"},
		{"only a bind of a deeper root", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"44 26 8:17 /a/b /mnt rw - ext4 /dev/sdb1 rw\n" +
			"45 26 8:17 /a /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mounted nowhere else"},
		{"filesystem mounted at two places", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"43 26 8:17 / /data rw - ext4 /dev/sdb1 rw\n" +
			"44 26 8:17 / /srv rw - ext4 /dev/sdb1 rw\n" +
			"45 26 8:17 /etc /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "more than one host path"},
		{"origin hidden under another mount", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"43 26 0:40 / /etc rw - tmpfs tmpfs rw\n" +
			"45 26 254:0 /etc /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mounted nowhere else"},
		{"deleted root", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 254:0 /etc/x\\040(deleted) /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mount of 254:0"},
		{"nsfs", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 0:4 net:[4026531840] /run/netns/x rw - nsfs nsfs rw\n",
			"/run/netns/x", "mount of 0:4"},
	} {
		m, err := NewMounts([]byte(c.table))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := m.Origin(c.p)
		if !errors.Is(err, ErrHiddenSource) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Origin = %q, %v; want ErrHiddenSource (%s)", c.name, got, err, c.want)
		}
	}
	// Stacked mounts: the top one counts.
	m, err := NewMounts([]byte("26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"45 26 254:0 /etc /k/v rw - ext4 /dev/vda rw\n" +
		"46 45 0:40 / /k/v rw - tmpfs tmpfs rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Origin("/k/v"); err != nil || got != "/k/v" {
		t.Errorf("stacked: %q, %v", got, err)
	}
	// The shorter root wins over a sibling bind that also contains it.
	m, _ = NewMounts([]byte("26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"45 26 254:0 /etc /k/a rw - ext4 /dev/vda rw\n" +
		"46 26 254:0 /etc/ssh /k/b rw - ext4 /dev/vda rw\n"))
	if got, err := m.Origin("/k/b"); err != nil || got != "/etc/ssh" {
		t.Errorf("nested: %q, %v", got, err)
	}
}

func TestMountResolverFixtureRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/proc/1", 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("../mountinfo/testdata/kubelet-subpath.mountinfo")
	if err := os.WriteFile(root+"/proc/1/mountinfo", data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := MountResolver(root, root+"/proc/1/mountinfo", true, nil)
	if got, err := r(capturePod + "/volume-subpaths/host/app/0"); err != nil || got != "/etc" {
		t.Errorf("got %q, %v", got, err)
	}
	// Without a mount table (optional): paths stand as resolved.
	r = MountResolver(root, root+"/proc/self/mountinfo", true, nil)
	if got, err := r(capturePod + "/volume-subpaths/host/app/0"); err != nil || got != capturePod+"/volume-subpaths/host/app/0" {
		t.Errorf("optional: got %q, %v", got, err)
	}
	// Required and absent, or unparsable: an error, never the path.
	r = MountResolver(root, root+"/proc/self/mountinfo", false, nil)
	if got, err := r("/etc"); err == nil {
		t.Errorf("required: got %q", got)
	}
	if err := os.WriteFile(root+"/proc/1/mountinfo", []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = MountResolver(root, root+"/proc/1/mountinfo", true, nil)
	if got, err := r("/etc"); err == nil {
		t.Errorf("garbage: got %q", got)
	}
}

// BenchmarkMountTable parses a table the size of a busy node's (the
// captured kubelet fixture's pod mounts repeated for 200 pods, ~1000
// mounts) and traces one subPath source: what a hook run pays when one of
// its sources is a mount point.
func BenchmarkMountTable(b *testing.B) {
	data, err := os.ReadFile("../mountinfo/testdata/kubelet-subpath.mountinfo")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	var sb strings.Builder
	sb.WriteString(strings.Join(lines[:20], ""))
	for i := 0; i < 200; i++ {
		for _, l := range lines[20:] {
			sb.WriteString(strings.ReplaceAll(l, "0f4c1a52", fmt.Sprintf("%08d", i)))
		}
	}
	table := []byte(sb.String())
	p := strings.ReplaceAll(capturePod, "0f4c1a52", fmt.Sprintf("%08d", 199)) + "/volume-subpaths/host/app/0"
	b.ReportAllocs()
	b.SetBytes(int64(len(table)))
	for b.Loop() {
		m, err := NewMounts(table)
		if err != nil {
			b.Fatal(err)
		}
		if got, err := m.Origin(p); err != nil || got != "/etc" {
			b.Fatalf("%q %v", got, err)
		}
	}
}
