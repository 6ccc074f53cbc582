package policy

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Real uid_map contents: the host's own namespace and `unshare --user
// --map-root-user` (captured on this machine), and containerd's pinned pod
// namespace as a kubelet hostUsers:false pod gets it.
var idMapCases = []struct {
	name string
	in   string
	want []IDMapping
}{
	{"host", "         0          0 4294967295\n", []IDMapping{{0, 0, 4294967295}}},
	{"map-root-user", "         0          0          1\n", []IDMapping{{0, 0, 1}}},
	{"pod", "         0    1048576      65536\n", []IDMapping{{0, 1048576, 65536}}},
	{"two", "         0     100000      65536\n     65536          0          1\n", []IDMapping{{0, 100000, 65536}, {65536, 0, 1}}},
}

func TestParseIDMap(t *testing.T) {
	for _, tc := range idMapCases {
		got, err := ParseIDMap([]byte(tc.in))
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%s: %v, %v", tc.name, got, err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: [%d] = %+v, want %+v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	for _, bad := range []string{"", "\n", "0 0\n", "0 0 1", "0 0 0\n", "a 0 1\n", "-1 0 1\n", "0 0 1 2\n",
		"4294967295 0 2\n", "0 4294967295 2\n", "0 0 4294967296\n"} {
		if got, err := ParseIDMap([]byte(bad)); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%q: got %v, %v; want ErrInvalidSpec", bad, got, err)
		}
	}
}

// TestParseIDMapThisProcess reads the kernel's own output for this process.
func TestParseIDMapThisProcess(t *testing.T) {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Skip(err)
	}
	if _, err := ParseIDMap(data); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		return
	}
	out, err := exec.Command("unshare", "--user", "--map-root-user", "cat", "/proc/self/uid_map").Output()
	if err != nil {
		t.Skipf("unshare: %v", err)
	}
	if m, err := ParseIDMap(out); err != nil || len(m) != 1 || m[0].HostID != 0 || m[0].Size != 1 {
		t.Fatalf("%q: %v, %v", out, m, err)
	}
}

func FuzzParseIDMap(f *testing.F) {
	for _, tc := range idMapCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseIDMap(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error not ErrInvalidSpec: %v", err)
			}
			return
		}
		if len(m) == 0 || len(m) > maxIDMapLines {
			t.Fatalf("%d ranges accepted", len(m))
		}
		for _, r := range m {
			if r.Size == 0 || uint64(r.ContainerID)+uint64(r.Size) > 1<<32 || uint64(r.HostID)+uint64(r.Size) > 1<<32 {
				t.Fatalf("bad range accepted: %+v", r)
			}
		}
	})
}

// TestFromSpecLiveIDMappings: the mappings the kernel shows decide, for a
// namespace joined by path (containerd's pinned pod namespace) as for one
// the spec creates with mappings that claim something else.
func TestFromSpecLiveIDMappings(t *testing.T) {
	p := Default()
	for _, tc := range []struct {
		name   string
		path   string
		spec   []specs.LinuxIDMapping
		live   *LiveIDMappings
		uid    uint32
		isRoot bool
	}{
		{"pinned pod namespace, live non-root", "/proc/42/ns/user", nil,
			&LiveIDMappings{UID: []IDMapping{{0, 1048576, 65536}}, GID: []IDMapping{{0, 1048576, 65536}}}, 65535, false},
		{"pinned pod namespace, not visible", "/proc/42/ns/user", nil, nil, 65535, true},
		{"live maps uid 1 to host 0", "/proc/42/ns/user", nil,
			&LiveIDMappings{UID: []IDMapping{{0, 100000, 1}, {1, 0, 1}}, GID: []IDMapping{{0, 100000, 65536}}}, 1000, true},
		{"spec claims non-root, live is host root", "", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
			&LiveIDMappings{UID: []IDMapping{{0, 0, 1}}, GID: []IDMapping{{0, 0, 1}}}, 0, true},
	} {
		spec := &specs.Spec{
			Process: &specs.Process{User: specs.User{UID: tc.uid, GID: tc.uid}},
			Linux: &specs.Linux{
				Namespaces:  []specs.LinuxNamespace{{Type: specs.UserNamespace, Path: tc.path}, {Type: specs.PIDNamespace}, {Type: specs.MountNamespace}},
				UIDMappings: tc.spec, GIDMappings: tc.spec,
			},
		}
		w, err := FromSpec(spec, nil, FromSpecOptions{Source: "hook", LiveIDMappings: tc.live})
		if err != nil {
			t.Fatal(err)
		}
		_, bad, _ := outcome(t, p, w, RuleRunAsRoot)
		if bad != tc.isRoot {
			t.Errorf("%s: runAsRoot violated=%v, want %v (user %+v)", tc.name, bad, tc.isRoot, w.User)
		}
	}
}
