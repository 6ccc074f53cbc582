package policy

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostDevices(t *testing.T) {
	testRuleOnFixtures(t, RuleHostDevices, []ruleFixtureCase{
		{"baseline", ""},
		// oci.WithLinuxDevice adds the node and a cgroup rule for it.
		{"hostDevices-fail", `container "app" must not have host device "/dev/kmsg" c 1:11 (linux.devices) or a device cgroup that allows c 1:11 rwm (linux.resources.devices)`},
		{"hostDevices-fail-allowall", `container "app" must not have a device cgroup that allows every device (linux.resources.devices)`},
	})
	testRuleDeferred(t, RuleHostDevices, FieldDevices)
	// Judged without FieldMounts (the NRI plugin leaves it out for a bind
	// source it cannot resolve): the mounts it reads are never binds.
	w := fixtureWorkload(t, "baseline")
	w.Seen &^= FieldMounts
	w.Mounts = append(w.Mounts, Mount{Destination: "/mnt", Source: "/dev/sda1", Type: "ext4"}, Mount{Destination: "/h", Source: "/srv", Type: "bind", Options: []string{"rbind"}})
	if v, violated, deferred := outcome(t, everyRuleEnforced(t), w, RuleHostDevices); deferred || !violated || !strings.Contains(v.Detail, `block device "/dev/sda1"`) {
		t.Errorf("mounts unseen: violated=%v deferred=%v %s", violated, deferred, v.Detail)
	}
	p := everyRuleEnforced(t)
	if _, bad := tweak(t, p, RuleHostDevices, func(w *Workload) {
		w.Devices = []Device{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/pts/0", Type: "c", Major: 136}, {Path: "/dev/fifo", Type: "p"}}
	}); bad {
		t.Error("runc's default devices judged as host devices")
	}
	// A privileged container: a hundred devices and an allow-all cgroup.
	// The detail lists eight; the privileged rule names the container.
	v, bad := tweak(t, p, RuleHostDevices, func(w *Workload) {
		for i := 0; i < 100; i++ {
			w.Devices = append(w.Devices, Device{Path: "/dev/loop" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Type: "b", Major: 7, Minor: int64(i)})
		}
		w.Devices = append(w.Devices, Device{Path: "/dev/mem", Type: "c", Major: 1, Minor: 1})
		w.DevicesAllowAll = true
	})
	want := `container "app" must not have 101 host devices, first "/dev/loopaa" b 7:0, "/dev/loopab" b 7:26, "/dev/loopac" b 7:52, "/dev/loopad" b 7:78, "/dev/loopba" b 7:1, "/dev/loopbb" b 7:27, "/dev/loopbc" b 7:53, "/dev/loopbd" b 7:79 (linux.devices) or a device cgroup that allows every device (linux.resources.devices)`
	if !bad || v.Detail != want {
		t.Errorf("many devices:\n got  %s\n want %s", v.Detail, want)
	}
}

// devicePolicies are the shipped policies, each of which must refuse every
// device bypass.
var devicePolicies = []string{"../examples/policies/baseline.yaml", "../examples/policies/restricted.yaml", "default.yaml"}

// runcSpec is `runc spec` as recorded with runc 1.1.5 (hook/testdata/runc):
// the plainest real spec.
func runcSpec(t *testing.T) *specs.Spec {
	t.Helper()
	return loadFixtureFile(t, "../hook/testdata/runc/config.json")
}

func i64(v int64) *int64 { return &v }

// denyAll is the first device cgroup rule of every runtime's spec.
var denyAll = specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}

func withDevice(path, typ string, major, minor int64) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: path, Type: typ, Major: major, Minor: minor})
	}
}

func withCgroup(rules ...specs.LinuxDeviceCgroup) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Resources.Devices = append([]specs.LinuxDeviceCgroup{denyAll}, rules...)
	}
}

func withMount(typ, src, dst string, opts ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Type: typ, Source: src, Destination: dst, Options: opts})
	}
}

func allow(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}
}

func deny(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Type: typ, Major: major, Minor: minor, Access: access}
}

type deviceCase struct {
	name  string
	tweak func(*specs.Spec)
	// detail is the wanted hostDevices detail; "" means admitted.
	detail string
}

// deviceBypasses are the bypasses of issue 10 and their neighbours: each
// must be refused, whatever the device is called.
var deviceBypasses = []deviceCase{
	{"kmsg named /dev/null2", withDevice("/dev/null2", "c", 1, 11), `host device "/dev/null2" c 1:11 (linux.devices)`},
	{"kmsg named /dev/tty0", withDevice("/dev/tty0", "c", 1, 11), `host device "/dev/tty0" c 1:11 (linux.devices)`},
	// runc drops its own /dev/null for a spec device of that path.
	{"kmsg named /dev/null", withDevice("/dev/null", "c", 1, 11), `host device "/dev/null" c 1:11 (linux.devices)`},
	{"sda named /dev/tty", withDevice("/dev/tty", "b", 8, 0), `host device "/dev/tty" b 8:0 (linux.devices)`},
	{"sda named /dev/pts/../sda", withDevice("/dev/pts/../sda", "b", 8, 0), `host device "/dev/pts/../sda" b 8:0 (linux.devices)`},
	{"tty type u", withDevice("/dev/x", "u", 1, 1), `host device "/dev/x" u 1:1 (linux.devices)`},
	{"unknown device type", withDevice("/dev/null", "x", 1, 3), `host device "/dev/null" x 1:3 (linux.devices)`},
	{"negative major", withDevice("/dev/x", "c", -1, 3), `host device "/dev/x" c -1:3 (linux.devices)`},
	{"cgroup a -1:-1 rwm", withCgroup(allow("a", i64(-1), i64(-1), "rwm")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup a *:*", withCgroup(allow("a", nil, nil, "rwm")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup type empty", withCgroup(allow("", nil, nil, "rw")), "a device cgroup that allows every device (linux.resources.devices)"},
	// runc resets to allow-all on any "a" rule, whatever its numbers.
	{"cgroup a 1:3 r", withCgroup(allow("a", i64(1), i64(3), "r")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup a *:* m", withCgroup(allow("a", nil, nil, "m")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup b *:* rwm", withCgroup(allow("b", nil, nil, "rwm")), "a device cgroup that allows b *:* rwm (linux.resources.devices)"},
	{"cgroup c *:* rwm", withCgroup(allow("c", nil, nil, "rwm")), "a device cgroup that allows c *:* rwm (linux.resources.devices)"},
	{"cgroup c -1:-1 rw", withCgroup(allow("c", i64(-1), i64(-1), "rw")), "a device cgroup that allows c *:* rw (linux.resources.devices)"},
	{"cgroup c 1:* rwm", withCgroup(allow("c", i64(1), nil, "rwm")), "a device cgroup that allows c 1:* rwm (linux.resources.devices)"},
	{"cgroup c *:3 rwm", withCgroup(allow("c", nil, i64(3), "rwm")), "a device cgroup that allows c *:3 rwm (linux.resources.devices)"},
	{"cgroup c 1:11 w", withCgroup(allow("c", i64(1), i64(11), "w")), "a device cgroup that allows c 1:11 w (linux.resources.devices)"},
	{"cgroup c 136 minor -5", withCgroup(allow("c", i64(136), i64(-5), "rw"), allow("c", i64(1), i64(-7), "r")), "a device cgroup that allows c 1:* r (linux.resources.devices)"},
	// runc refuses an empty access; another runtime may read it as rwm.
	{"cgroup empty access", withCgroup(allow("b", i64(8), i64(0), "")), "a device cgroup that allows b 8:0 rwm (linux.resources.devices)"},
	{"cgroup bad access", withCgroup(allow("b", i64(8), i64(0), "x")), "a device cgroup that allows b 8:0 rwm (linux.resources.devices)"},
	// A deny of b *:* takes nothing from an earlier b 8:0 (runc's emulator
	// and the cgroup v1 kernel subtract only an exact match).
	{"cgroup b 8:0 then deny b *:*", withCgroup(allow("b", i64(8), i64(0), "rwm"), deny("b", nil, nil, "rwm")), "a device cgroup that allows b 8:0 rwm (linux.resources.devices)"},
	{"cgroup deny only m", withCgroup(allow("b", i64(8), i64(0), "rwm"), deny("b", i64(8), i64(0), "m")), "a device cgroup that allows b 8:0 rw (linux.resources.devices)"},
	{"cgroup deny a 8:0", withCgroup(allow("b", i64(8), i64(0), "rwm"), deny("a", i64(8), i64(0), "rwm")), "a device cgroup that allows b 8:0 rwm (linux.resources.devices)"},
	{"cgroup allow all then deny some", withCgroup(allow("a", nil, nil, "rwm"), deny("b", nil, nil, "rwm"), deny("a", nil, nil, "r")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup bad type", withCgroup(allow("p", i64(1), i64(3), "rwm")), "a device cgroup that allows every device (linux.resources.devices)"},
	{"cgroup no deny first", func(s *specs.Spec) {
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{allow("c", i64(10), i64(229), "rwm")}
	}, "a device cgroup that allows c 10:229 rwm (linux.resources.devices)"},
	{"ext4 of /dev/sda1", withMount("ext4", "/dev/sda1", "/mnt"), `block device "/dev/sda1" mounted at "/mnt" as "ext4" (mounts)`},
	{"xfs of /dev/mapper/x", withMount("xfs", "/dev/mapper/x", "/data", "ro"), `block device "/dev/mapper/x" mounted at "/data" as "xfs" (mounts)`},
	{"ext4 of a relative path", withMount("ext4", "dev/sda1", "/mnt"), `block device "dev/sda1" mounted at "/mnt" as "ext4" (mounts)`},
	{"ext4 of a node outside /dev", withMount("ext4", "/run/containerd/x/rootfs/disk", "/mnt"), `block device "/run/containerd/x/rootfs/disk" mounted at "/mnt" as "ext4" (mounts)`},
	{"tmpfs of /dev/../dev/sda", withMount("tmpfs", "/dev/../dev/sda", "/mnt"), `block device "/dev/../dev/sda" mounted at "/mnt" as "tmpfs" (mounts)`},
	{"proc of //dev//sda", withMount("proc", "//dev//sda", "/mnt"), `block device "//dev//sda" mounted at "/mnt" as "proc" (mounts)`},
	{"no type", withMount("", "/dev/sda", "/mnt"), `block device "/dev/sda" mounted at "/mnt" as "" (mounts)`},
	{"fuseblk", withMount("fuseblk", "/dev/sdb1", "/mnt"), `block device "/dev/sdb1" mounted at "/mnt" as "fuseblk" (mounts)`},
	{"devtmpfs", withMount("devtmpfs", "devtmpfs", "/hostdev"), `the host's devtmpfs mounted at "/hostdev" (mounts)`},
	{"all three", func(s *specs.Spec) {
		withDevice("/dev/null2", "c", 1, 11)(s)
		withCgroup(allow("b", nil, nil, "rwm"))(s)
		withMount("ext4", "/dev/sda1", "/mnt")(s)
		withMount("ext4", "/dev/sda1", "/mnt2")(s)
	}, `host device "/dev/null2" c 1:11 (linux.devices) or a device cgroup that allows b *:* rwm (linux.resources.devices) or block devices "/dev/sda1" mounted at "/mnt" as "ext4", "/dev/sda1" mounted at "/mnt2" as "ext4" (mounts)`},
}

// deviceControls are the neighbours that must be admitted.
var deviceControls = []deviceCase{
	{"runc spec", func(*specs.Spec) {}, ""},
	{"zero named /dev/zero2", withDevice("/dev/zero2", "c", 1, 5), ""},
	{"runtime defaults by number", func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices, []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/zero", Type: "c", Major: 1, Minor: 5}, {Path: "/dev/full", Type: "c", Major: 1, Minor: 7}, {Path: "/dev/random", Type: "c", Major: 1, Minor: 8}, {Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9}, {Path: "/dev/tty", Type: "c", Major: 5, Minor: 0}, {Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2}, {Path: "/dev/pts/7", Type: "c", Major: 136, Minor: 7}, {Path: "/dev/fifo", Type: "p"}}...)
	}, ""},
	// moby's default device cgroup (and runc's own AllowedDevices).
	{"docker default cgroup", withCgroup(allow("c", nil, nil, "m"), allow("b", nil, nil, "m"), allow("c", i64(1), i64(3), "rwm"), allow("c", i64(1), i64(8), "rwm"), allow("c", i64(1), i64(7), "rwm"), allow("c", i64(5), i64(0), "rwm"), allow("c", i64(1), i64(5), "rwm"), allow("c", i64(1), i64(9), "rwm"), allow("c", i64(136), nil, "rwm"), allow("c", i64(5), i64(2), "rwm")), ""},
	{"cgroup allowed then denied", withCgroup(allow("b", i64(8), i64(0), "rwm"), deny("b", i64(8), i64(0), "rw")), ""},
	{"cgroup allow all then deny all", withCgroup(allow("a", nil, nil, "rwm"), deny("a", i64(-1), nil, "rwm")), ""},
	{"cgroup deny all only", func(s *specs.Spec) { s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{denyAll} }, ""},
	{"cgroup none", func(s *specs.Spec) { s.Linux.Resources = nil }, ""},
	{"tmpfs at /mnt", withMount("tmpfs", "tmpfs", "/mnt", "nosuid"), ""},
	{"cgroup2", withMount("cgroup2", "cgroup2", "/sys/fs/cgroup"), ""},
	// A bind of a /dev path is a host path: hostPathMounts judges it.
	{"bind of /dev/sda", withMount("bind", "/dev/sda", "/mnt", "rbind"), ""},
	{"ext4 with bind option", withMount("ext4", "/dev/sda", "/mnt", "bind"), ""},
}

// TestHostDevicesBypasses runs every bypass and control on the recorded runc
// spec under each shipped policy.
func TestHostDevicesBypasses(t *testing.T) {
	for _, file := range devicePolicies {
		p, err := Load(file, "")
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		for _, group := range [][]deviceCase{deviceBypasses, deviceControls} {
			for _, tc := range group {
				s := runcSpec(t)
				tc.tweak(s)
				w, err := FromSpec(s, nil, FromSpecOptions{Source: "test", Container: ContainerIdentity{Name: "app"}})
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				v, violated, deferred := outcome(t, p, w, RuleHostDevices)
				switch {
				case deferred:
					t.Errorf("%s %s: deferred", name, tc.name)
				case tc.detail == "" && violated:
					t.Errorf("%s %s: refused: %s", name, tc.name, v.Detail)
				case tc.detail != "" && !violated:
					t.Errorf("%s %s: admitted, want %s", name, tc.name, tc.detail)
				case tc.detail != "" && v.Detail != `container "app" must not have `+tc.detail:
					t.Errorf("%s %s:\n got  %s\n want %s", name, tc.name, v.Detail, tc.detail)
				case violated && v.Action != ActionEnforce:
					t.Errorf("%s %s: action %s", name, tc.name, v.Action)
				}
			}
		}
	}
}

// TestHostDevicesRecorded: the specs real runtimes wrote pass, except the
// privileged one.
func TestHostDevicesRecorded(t *testing.T) {
	p := everyRuleEnforced(t)
	for _, tc := range []struct {
		file string
		bad  bool
	}{
		{"../hook/testdata/runc/config.json", false},
		{"../hook/testdata/containerd/config.json", false},
		{"../hook/testdata/podman/default/config.json", false},
		{"../hook/testdata/podman/cap-sys-admin/config.json", false},
		{"../hook/testdata/podman/privileged-pod/config.json", true},
	} {
		w, err := FromSpec(loadFixtureFile(t, tc.file), nil, FromSpecOptions{Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		v, violated, _ := outcome(t, p, w, RuleHostDevices)
		if violated != tc.bad {
			t.Errorf("%s: violated=%v %s", tc.file, violated, v.Detail)
		}
		if tc.bad && (len(v.Detail) > 400 || !strings.Contains(v.Detail, "every device")) {
			t.Errorf("%s: privileged detail too long or wrong (%d bytes): %s", tc.file, len(v.Detail), v.Detail)
		}
	}
}

// TestHostDevicesAllowed: rules.hostDevices.allowed admits devices by number,
// for nodes and cgroup rules alike, and nothing else.
func TestHostDevicesAllowed(t *testing.T) {
	fuse, err := LoadBytes("fuse.yaml", []byte(header+"metadata: {name: fuse}\nspec: {rules: {hostDevices: {allowed: [\"c 10:229\", \"b 7:*\"]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	plain := everyRuleEnforced(t)
	for _, tc := range []struct {
		name  string
		tweak func(*specs.Spec)
		// admitted under the fuse policy; never under the plain one.
		admitted bool
	}{
		{"fuse node and rule", func(s *specs.Spec) {
			withDevice("/dev/fuse", "c", 10, 229)(s)
			withCgroup(allow("c", i64(10), i64(229), "rwm"))(s)
		}, true},
		{"fuse under another name", withDevice("/dev/null3", "c", 10, 229), true},
		{"loop minors", func(s *specs.Spec) {
			withDevice("/dev/loop3", "b", 7, 3)(s)
			withCgroup(allow("b", i64(7), nil, "rw"))(s)
		}, true},
		{"fuse as block", withDevice("/dev/fuse", "b", 10, 229), false},
		{"misc wildcard", withCgroup(allow("c", i64(10), nil, "rwm")), false},
		{"loop as char", withCgroup(allow("c", i64(7), i64(0), "rwm")), false},
	} {
		for _, p := range []*Policy{fuse, plain} {
			s := runcSpec(t)
			tc.tweak(s)
			w, err := FromSpec(s, nil, FromSpecOptions{Source: "test"})
			if err != nil {
				t.Fatal(err)
			}
			v, violated, _ := outcome(t, p, w, RuleHostDevices)
			if want := !(tc.admitted && p == fuse); violated != want {
				t.Errorf("%s under %s: violated=%v, want %v %s", tc.name, p.Name(), violated, want, v.Detail)
			}
		}
	}
}

func TestParseDevNum(t *testing.T) {
	for in, want := range map[string]string{
		"c 10:229": "c 10:229", "b 7:*": "b 7:*", " c  1:3 ": "c 1:3", "b 4095:1048575": "b 4095:1048575",
	} {
		d, err := parseDevNum(in)
		if err != nil || d.String() != want {
			t.Errorf("parseDevNum(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"", "c", "/dev/fuse", "dev/fuse", "c 10", "c 10:", "c :1", "c *:1", "c -1:3", "c 1:-1", "a 1:3", "u 1:3", "cc 1:3", "c 4096:0", "b 0:1048576", "c 1:3 rwm", "c 0x1:3", "c 1:3\x00"} {
		if d, err := parseDevNum(in); err == nil {
			t.Errorf("parseDevNum(%q) = %v, want an error", in, d)
		}
	}
}

// TestDeviceOracle: the fuzz oracle refuses every bypass and no control, so
// FuzzEvaluateSpec can catch the rule admitting one.
func TestDeviceOracle(t *testing.T) {
	for _, tc := range deviceBypasses {
		s := runcSpec(t)
		tc.tweak(s)
		if deviceOracle(s) == "" {
			t.Errorf("oracle admits %s", tc.name)
		}
	}
	for _, tc := range deviceControls {
		s := runcSpec(t)
		tc.tweak(s)
		if msg := deviceOracle(s); msg != "" {
			t.Errorf("oracle refuses %s: %s", tc.name, msg)
		}
	}
}
