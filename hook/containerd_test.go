package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// containerdBundle lays out the recorded containerd input (see
// testdata/README.md) under a temp state directory, with containerd's
// bundle convention, and a fixture host root whose /proc holds the
// sandbox's namespace files. hostNet makes the sandbox's network namespace
// the host's (init's).
func containerdBundle(t *testing.T, hostNet bool) (state, hostRoot string) {
	t.Helper()
	raw, err := os.ReadFile("testdata/containerd/state.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile("testdata/containerd/config.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bundle := filepath.Join(dir, "state", "io.containerd.runtime.v2.task", "k8s.io", st.ID)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hostRoot = filepath.Join(dir, "host")
	init := filepath.Join(hostRoot, "proc", "1", "ns")
	if err := os.MkdirAll(init, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ns := range spec.Linux.Namespaces {
		name := map[string]string{"network": "net", "mount": "mnt"}[string(ns.Type)]
		if name == "" {
			name = string(ns.Type)
		}
		if err := os.WriteFile(filepath.Join(init, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if ns.Path == "" {
			continue
		}
		p := filepath.Join(hostRoot, ns.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if hostNet && ns.Type == "network" {
			if err := os.Link(filepath.Join(init, name), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Replace(string(raw), st.Bundle, bundle, 1), hostRoot
}

func TestContainerdRecorded(t *testing.T) {
	stateJSON, hostRoot := containerdBundle(t, false)
	st, err := ParseState([]byte(stateJSON))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ClassifyBundle(st.Bundle, st.ID)
	if err != nil || info.Layout != LayoutContainerd || info.Namespace != "k8s.io" {
		t.Fatalf("classify: %+v %v", info, err)
	}
	w, err := BuildWorkload(st, hostRoot, IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Name != "web-0" || w.Pod.Namespace != "shop" || w.Pod.UID != "uid-shop-web-0" ||
		w.Container.Name != "web" || w.Container.Image != "docker.io/library/busybox:1.35.0" || w.Container.ID != st.ID {
		t.Errorf("identity: pod %+v container %+v", w.Pod, w.Container)
	}
	if w.User.UID != 1000 || !w.NoNewPrivileges || len(w.MaskedPaths) == 0 {
		t.Errorf("spec fields: user %+v nnp %v masked %v", w.User, w.NoNewPrivileges, w.MaskedPaths)
	}
	// cgroup, time and user are not in containerd's spec, so they are the
	// host's (the default policy does not judge them); pid, ipc, network
	// and uts are the sandbox's.
	if !w.Seen.Has(policy.FieldHostNamespaces) || !slices.Equal(w.HostNamespaces, []string{"cgroup", "time", "user"}) {
		t.Errorf("namespaces: seen %v host %v", w.Seen.Has(policy.FieldHostNamespaces), w.HostNamespaces)
	}
	ident := IdentityFrom(st.ID, st.Annotations)
	if ident.Runtime != RuntimeContainerd || ident.Sandbox || ident.SandboxID == "" {
		t.Errorf("identity: %+v", ident)
	}

	// The sandbox's network namespace is init's: host network.
	stateJSON, hostRoot = containerdBundle(t, true)
	st, err = ParseState([]byte(stateJSON))
	if err != nil {
		t.Fatal(err)
	}
	w, err = BuildWorkload(st, hostRoot, IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.HostNamespaces, []string{"cgroup", "network", "time", "user"}) {
		t.Errorf("host namespaces = %v, want network besides cgroup, time, user", w.HostNamespaces)
	}
}

// A namespace path that cannot be resolved leaves the rule deferred (never
// a pass): here the fixture host root lacks the sandbox's /proc/<pid>.
func TestContainerdUnresolvableNamespaceDeferred(t *testing.T) {
	stateJSON, _ := containerdBundle(t, false)
	st, err := ParseState([]byte(stateJSON))
	if err != nil {
		t.Fatal(err)
	}
	w, err := BuildWorkload(st, t.TempDir(), IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Seen.Has(policy.FieldHostNamespaces) {
		t.Fatalf("unresolvable namespaces judged: host %v", w.HostNamespaces)
	}
}

// The hook tells the apparmor rule whether the host enforces AppArmor, read
// under its host root: there containerd's empty profile (an explicit
// Unconfined) runs unconfined.
func TestBuildWorkloadHostAppArmor(t *testing.T) {
	stateJSON, _ := containerdBundle(t, false)
	st, err := ParseState([]byte(stateJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, enabled := range []bool{false, true} {
		root := t.TempDir()
		if enabled {
			dir := filepath.Join(root, "sys", "module", "apparmor", "parameters")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "enabled"), []byte("Y\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		w, err := BuildWorkload(st, root, IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if w.HostAppArmor != enabled {
			t.Errorf("host AppArmor %v: Workload.HostAppArmor = %v", enabled, w.HostAppArmor)
		}
	}
}

// liveIDMappings reads the container process's uid_map and gid_map under the
// host root; anything unreadable or malformed gives nil (not visible).
func TestLiveIDMappings(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "proc", "4242")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("uid_map", "         0    1048576      65536\n")
	if m := liveIDMappings(root, 4242); m != nil {
		t.Fatalf("gid_map missing, got %+v", m)
	}
	write("gid_map", "         0    1048576      65536\n")
	m := liveIDMappings(root, 4242)
	if m == nil || len(m.UID) != 1 || m.UID[0].HostID != 1048576 || len(m.GID) != 1 {
		t.Fatalf("got %+v", m)
	}
	write("gid_map", "0 0\n")
	if m := liveIDMappings(root, 4242); m != nil {
		t.Fatalf("malformed gid_map, got %+v", m)
	}
}

// On an AppArmor host the hook looks the named profile up in the kernel's
// list of loaded profiles under its host root: Ubuntu's "runc" profile is
// loaded unconfined; a missing list is unreadable (refused by the rule).
func TestBuildWorkloadAppArmorMode(t *testing.T) {
	stateJSON, _ := containerdBundle(t, false)
	st, err := ParseState([]byte(stateJSON))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(st.Bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := os.ReadFile("../policy/testdata/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		profile string
		list    bool
		want    string
	}{
		{"runc", true, "unconfined"},
		{"cri-containerd.apparmor.d", true, "enforce"},
		{"rsyslogd", true, "complain"},
		{"absent", true, policy.AppArmorModeNotLoaded},
		{"cri-containerd.apparmor.d", false, policy.AppArmorModeUnreadable},
		{"", true, ""},
	} {
		spec.Process.ApparmorProfile = tc.profile
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		for name, data := range map[string][]byte{
			"sys/module/apparmor/parameters/enabled": []byte("Y\n"),
			"sys/kernel/security/apparmor/profiles":  profiles,
		} {
			if name == "sys/kernel/security/apparmor/profiles" && !tc.list {
				continue
			}
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		w, err := BuildWorkload(st, root, IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if w.AppArmorMode != tc.want {
			t.Errorf("%q (list %v): AppArmorMode %q, want %q", tc.profile, tc.list, w.AppArmorMode, tc.want)
		}
	}
}

// processNamespaceResolver judges the namespace the container's process is
// in, not the spec's path, which may point elsewhere by the time the hook
// runs (a symlink swapped after runc joined it). In the fixture, process 42's
// uts namespace is init's (a hard link: same device and inode) while the
// spec's path names a private one.
func TestProcessNamespaceResolver(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"proc/1/ns", "proc/42/ns", "private"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	host := filepath.Join(root, "proc/1/ns/uts")
	if err := os.WriteFile(host, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(host, filepath.Join(root, "proc/42/ns/uts")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "private/uts"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if h, err := processNamespaceResolver(root, 42)("uts", "/private/uts"); err != nil || !h {
		t.Errorf("by process: host=%v, %v; want the host's", h, err)
	}
	// Without the process's namespace, the spec's path is judged.
	if h, err := processNamespaceResolver(root, 43)("uts", "/private/uts"); err != nil || h {
		t.Errorf("by path: host=%v, %v; want private", h, err)
	}
	if h, err := processNamespaceResolver(root, 0)("uts", "/proc/1/ns/uts"); err != nil || !h {
		t.Errorf("no pid: host=%v, %v", h, err)
	}
}

// A containerd task outside CRI's namespace (moby, default: made by `ctr`
// or another client of containerd, annotations and all) gets no pod
// identity, even with --identity-from containerd and containerd's keys.
func TestContainerdOtherNamespaceNoIdentity(t *testing.T) {
	for _, ns := range []string{"default", "moby"} {
		stateJSON, hostRoot := containerdBundle(t, false)
		st, err := ParseState([]byte(stateJSON))
		if err != nil {
			t.Fatal(err)
		}
		cri := filepath.Dir(st.Bundle)
		other := filepath.Join(filepath.Dir(cri), ns)
		if err := os.Rename(cri, other); err != nil {
			t.Fatal(err)
		}
		st.Bundle = filepath.Join(other, st.ID)
		if info, err := ClassifyBundle(st.Bundle, st.ID); err != nil || info.Layout != LayoutContainerd || info.Namespace != ns {
			t.Fatalf("%s: classify: %+v %v", ns, info, err)
		}
		w, err := BuildWorkload(st, hostRoot, IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if w.Pod.Name != "" || w.Pod.Namespace != "" || w.Pod.UID != "" || w.Container != (policy.ContainerIdentity{ID: st.ID}) {
			t.Errorf("%s: identity: pod %+v container %+v, want the id only", ns, w.Pod, w.Container)
		}
	}
}
