package hostpath

import (
	"errors"
	"fmt"
	"os"
	"slices"
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

// TestOriginsKubeletSubpath traces the real subPath-like binds of the
// captured fixture (see internal/mountinfo/testdata).
func TestOriginsKubeletSubpath(t *testing.T) {
	m := fixtureMounts(t, "kubelet-subpath.mountinfo")
	for _, c := range []struct {
		p    string
		want []string
		tied int
	}{
		// hostPath / + subPath etc: /etc, and the sibling bind of the
		// same directory for another container, which comes after (a
		// longer root).
		{capturePod + "/volume-subpaths/host/app/0", []string{"/etc", capturePod + "/volume-subpaths/host/side car/0"}, 1},
		{capturePod + "/volume-subpaths/host/side car/0", []string{"/etc", capturePod + "/volume-subpaths/host/app/0"}, 1},
		// emptyDir subPath: a directory of the root filesystem.
		{capturePod + "/volume-subpaths/scratch/app/1", []string{capturePod + "/volumes/kubernetes.io~empty-dir/scratch/data"}, 1},
		// configMap-like subPath: a file in the pod's tmpfs volume.
		{capturePod + "/volume-subpaths/cfg/app/2", []string{capturePod + "/volumes/kubernetes.io~configmap/cfg/..2026_12_02_09_00_00.123/app.conf"}, 1},
		// A whole filesystem seen nowhere else, and no mount point.
		{capturePod + "/volumes/kubernetes.io~configmap/cfg", nil, 0},
		{"/dev/shm", nil, 0},
		{"/etc", nil, 0},
		{capturePod + "/volume-subpaths/host/app", nil, 0},
	} {
		got, tied, err := m.Origins(c.p)
		if err != nil || !slices.Equal(got, c.want) || tied != c.tied {
			t.Errorf("Origins(%s) = %q, %d, %v; want %q, %d", c.p, got, tied, err, c.want, c.tied)
		}
	}
}

func TestOriginsHidden(t *testing.T) {
	for _, c := range []struct{ name, table, p, want string }{
		{"file of a filesystem mounted nowhere else", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 8:17 /secret /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mounted nowhere else"},
		{"only a bind of a deeper root", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"44 26 8:17 /a/b /mnt rw - ext4 /dev/sdb1 rw\n" +
			"45 26 8:17 /a /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", "mounted nowhere else"},
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
		got, _, err := m.Origins(c.p)
		if !errors.Is(err, ErrHiddenSource) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Origins = %q, %v; want ErrHiddenSource (%s)", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct {
		name, table, p string
		want           []string
		tied           int
	}{
		{"a filesystem mounted at two places", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"43 26 8:17 / /data rw - ext4 /dev/sdb1 rw\n" +
			"44 26 8:17 / /srv rw - ext4 /dev/sdb1 rw\n" +
			"45 26 8:17 /etc /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/sdb1 rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", []string{"/data/etc", "/srv/etc"}, 2},
		{"stacked: the top one counts", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 254:0 /etc /k/v rw - ext4 /dev/vda rw\n" +
			"46 45 0:40 / /k/v rw - tmpfs tmpfs rw\n", "/k/v", nil, 0},
		{"the shorter root first", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 254:0 /etc /k/a rw - ext4 /dev/vda rw\n" +
			"46 26 254:0 /etc/ssh /k/b rw - ext4 /dev/vda rw\n", "/k/b", []string{"/etc/ssh", "/k/a/ssh"}, 1},
		{"subPath . of hostPath /: the whole root filesystem", "26 1 254:0 / / rw - ext4 /dev/vda rw\n" +
			"45 26 254:0 / /k/pods/u/volume-subpaths/v/c/0 rw - ext4 /dev/vda rw\n",
			"/k/pods/u/volume-subpaths/v/c/0", []string{"/"}, 1},
	} {
		m, err := NewMounts([]byte(c.table))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, tied, err := m.Origins(c.p)
		if err != nil || !slices.Equal(got, c.want) || tied != c.tied {
			t.Errorf("%s: Origins = %q, %d, %v; want %q, %d", c.name, got, tied, err, c.want, c.tied)
		}
	}
}

func TestOriginsFuncFixtureRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/proc/1", 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("../mountinfo/testdata/kubelet-subpath.mountinfo")
	if err := os.WriteFile(root+"/proc/1/mountinfo", data, 0o644); err != nil {
		t.Fatal(err)
	}
	f := OriginsFunc(root, root+"/proc/1/mountinfo", true, nil)
	if got, _, err := f(capturePod + "/volume-subpaths/host/app/0"); err != nil || len(got) == 0 || got[0] != "/etc" {
		t.Errorf("got %q, %v", got, err)
	}
	// Without a mount table (optional): no origins.
	f = OriginsFunc(root, root+"/proc/self/mountinfo", true, nil)
	if got, _, err := f(capturePod + "/volume-subpaths/host/app/0"); err != nil || got != nil {
		t.Errorf("optional: got %q, %v", got, err)
	}
	// Required and absent, or unparsable: an error.
	f = OriginsFunc(root, root+"/proc/self/mountinfo", false, nil)
	if got, _, err := f("/etc"); err == nil {
		t.Errorf("required: got %q", got)
	}
	if err := os.WriteFile(root+"/proc/1/mountinfo", []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f = OriginsFunc(root, root+"/proc/1/mountinfo", true, nil)
	if got, _, err := f("/etc"); err == nil {
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
		if got, _, err := m.Origins(p); err != nil || got[0] != "/etc" {
			b.Fatalf("%q %v", got, err)
		}
	}
}

// TestBackingPodVolumes finds the mount that backs each path of the
// captured pod-volumes fixture (see internal/mountinfo/testdata).
func TestBackingPodVolumes(t *testing.T) {
	const (
		k   = "/tmp/pgk-podvol/kubelet"
		pod = k + "/pods/7b3e9c10-2f4a-4d6b-8e1c-5a6b7c8d9e0f"
	)
	m := fixtureMounts(t, "kubelet-podvolumes.mountinfo")
	for _, c := range []struct {
		p                  string
		mp, typ, src, root string
		kubeletFS          bool
		origins            []string
	}{
		{pod + "/volumes/kubernetes.io~iscsi/disk", pod + "/volumes/kubernetes.io~iscsi/disk", "ext4", "/dev/loop0", "/", false, nil},
		{pod + "/volumes/kubernetes.io~iscsi/disk/lost+found", pod + "/volumes/kubernetes.io~iscsi/disk", "ext4", "/dev/loop0", "/", false, nil},
		{pod + "/volumes/kubernetes.io~configmap/cfg", pod + "/volumes/kubernetes.io~configmap/cfg", "tmpfs", "tmpfs", "/", false, nil},
		{pod + "/volumes/kubernetes.io~empty-dir/scratch", "/", "ext4", "/dev/vda", "/", true, nil},
		{pod + "/volumes/kubernetes.io~csi/pv-data/mount", pod + "/volumes/kubernetes.io~csi/pv-data/mount", "ext4", "/dev/loop1", "/", false, []string{k + "/plugins/kubernetes.io/csi/pv/pv-data/globalmount"}},
		{pod + "/volumes/kubernetes.io~hostpathlike/etc", pod + "/volumes/kubernetes.io~hostpathlike/etc", "ext4", "/dev/vda", "/etc", true, []string{"/etc"}},
	} {
		b, err := m.Backing(c.p, k)
		if err != nil || b.MountPoint != c.mp || b.FSType != c.typ || b.Source != c.src || b.Root != c.root || b.KubeletFS != c.kubeletFS || !slices.Equal(b.Origins, c.origins) {
			t.Errorf("Backing(%s) = %+v, %v", c.p, b, err)
		}
	}
	hidden, err := NewMounts([]byte("26 1 254:0 / / rw - ext4 /dev/vda rw\n45 26 8:17 /secret " + pod + "/volumes/x~y/d rw - ext4 /dev/sdb1 rw\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hidden.Backing(pod+"/volumes/x~y/d/f", k); !errors.Is(err, ErrHiddenSource) {
		t.Errorf("hidden: %v", err)
	}
}

// TestHostMountsReadsOnce: Origins and Backing share one reading.
func TestHostMountsReadsOnce(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/mountinfo"
	if err := os.WriteFile(p, []byte("26 1 254:0 / / rw - ext4 /dev/vda rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := NewHostMounts("/", p, false, nil)
	if _, ok, err := h.Backing("/k/pods/u/x", "/k"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Origins("/k/pods/u/x"); err != nil {
		t.Fatalf("read again: %v", err)
	}
	if _, _, err := NewHostMounts("/", p, false, nil).Backing("/x", "/k"); err == nil {
		t.Fatal("malformed table accepted")
	}
}
