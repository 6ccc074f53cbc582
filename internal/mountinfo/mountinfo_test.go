package mountinfo

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// testdata/vm.mountinfo is this project's test machine's
// /proc/self/mountinfo, byte for byte; kubelet-subpath.mountinfo is the
// same machine with a scratch kubelet pod directory: a tmpfs volume, binds
// of /etc (one at a mount point with a space), of an emptyDir
// subdirectory and of a file in the tmpfs, made with mount(8);
// kubelet-podvolumes.mountinfo is the same machine with a scratch kubelet
// pod directory holding inline-volume-like mounts: an ext4 image on a loop
// device (kubernetes.io~iscsi/disk), tmpfs volumes (configMap, emptyDir
// medium Memory), a CSI-like bind of a loop-mounted global mount, and a
// bind of /etc, made with mount(8) in a private mount namespace.

func TestParseFixtures(t *testing.T) {
	for _, name := range []string{"vm.mountinfo", "kubelet-subpath.mountinfo"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := strings.Count(string(data), "\n"); len(ms) != n {
			t.Fatalf("%s: %d mounts for %d lines", name, len(ms), n)
		}
		if ms[5].MountPoint != "/" || ms[5].Root != "/" || ms[5].Major != 254 || ms[5].Minor != 0 || ms[5].FSType != "ext4" || ms[5].Source != "/dev/vda" {
			t.Errorf("%s: root mount %+v", name, ms[5])
		}
	}
	data, _ := os.ReadFile("testdata/kubelet-subpath.mountinfo")
	ms, _ := Parse(data)
	got := ms[len(ms)-3]
	want := Mount{ID: 46, Parent: 26, Major: 254, Minor: 0, Root: "/etc",
		MountPoint: "/tmp/pgk-capture/kubelet/pods/0f4c1a52-7d1e-4c55-9a3b-1c2d3e4f5a6b/volume-subpaths/host/side car/0",
		Options:    "rw,relatime", FSType: "ext4", Source: "/dev/vda", SuperOpts: "rw,discard,resv_strict,resuid=65534,resgid=65534"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseLine(t *testing.T) {
	// proc(5)'s example, and optional fields.
	m, err := ParseLine(`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue`)
	if err != nil {
		t.Fatal(err)
	}
	want := Mount{ID: 36, Parent: 35, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt2", Options: "rw,noatime",
		Optional: []string{"master:1", "shared:7"}, FSType: "ext3", Source: "/dev/root", SuperOpts: "rw,errors=continue"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
	// An empty source, an nsfs root, escapes.
	m, err = ParseLine(`50 26 0:4 net:[4026531840] /run/netns/a\134b\011c rw - nsfs  rw`)
	if err != nil {
		t.Fatal(err)
	}
	if m.Root != "net:[4026531840]" || m.MountPoint != "/run/netns/a\\b\tc" || m.Source != "" {
		t.Errorf("%+v", m)
	}
	for _, bad := range []string{
		"",
		`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw`, // no separator
		`36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root`,                   // no super options
		`36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw extra`,          // extra field
		`36 35 98 /mnt1 /mnt2 rw - ext3 /dev/root rw`,                  // no minor
		`36 35 98:x /mnt1 /mnt2 rw - ext3 /dev/root rw`,                // bad minor
		`36 35 4096:0 /mnt1 /mnt2 rw - ext3 /dev/root rw`,              // major > 12 bits
		`036 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw`,               // leading zero
		`-1 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw`,                // sign
		`36 35 98:0 /mnt1 mnt2 rw - ext3 /dev/root rw`,                 // relative mount point
		`36 35 98:0 /mnt\1 /mnt2 rw - ext3 /dev/root rw`,               // bad escape
		`36 35 98:0 /mnt1 /mnt2\04 rw - ext3 /dev/root rw`,             // short escape
		`36 35 98:0 /mnt1 /mnt2\400 rw - ext3 /dev/root rw`,            // escape > 255
		`36 35 98:0 /mnt1  /mnt2 rw - ext3 /dev/root rw`,               // double space
		"36 35 98:0 /mnt1 /mnt\t2 rw - ext3 /dev/root rw",              // raw tab
		`36 35 98:0  /mnt2 rw - ext3 /dev/root rw`,                     // empty root
		`36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw `,               // trailing space
	} {
		if m, err := ParseLine(bad); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %+v, %v; want ErrInvalid", bad, m, err)
		}
	}
	if _, err := Parse([]byte("26 1 254:0 / / rw - ext4 /dev/vda rw")); err == nil {
		t.Error("no final newline: accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"vm.mountinfo", "kubelet-subpath.mountinfo", "kubelet-podvolumes.mountinfo"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.MountPoint == "" || m.MountPoint[0] != '/' || m.Root == "" || m.FSType == "" || m.Options == "" || m.SuperOpts == "" {
				t.Fatalf("accepted %+v", m)
			}
		}
		if n := strings.Count(string(data), "\n"); n != len(ms) {
			t.Fatalf("%d mounts from %d lines", len(ms), n)
		}
	})
}
