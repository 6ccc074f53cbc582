package policy

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMountNamespaceAlwaysForbidden: no mount namespace of its own (the
// host's) or one joined by path is refused by every shipped policy, whatever
// hostNamespaces.namespaces lists; a private one is not. Found by an attacker
// with real runc: {"type":"mount","path":"/proc/1/ns/mnt"} was admitted.
func TestMountNamespaceAlwaysForbidden(t *testing.T) {
	for _, file := range []string{"baseline", "restricted", "kernel-aware", "audit-only"} {
		p, err := Load("../examples/policies/"+file+".yaml", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			mount  *specs.LinuxNamespace
			detail string
		}{
			{"private", &specs.LinuxNamespace{Type: specs.MountNamespace}, ""},
			{"host by path", &specs.LinuxNamespace{Type: specs.MountNamespace, Path: "/proc/1/ns/mnt"}, `must not join the mount namespace "/proc/1/ns/mnt"`},
			{"another container's", &specs.LinuxNamespace{Type: specs.MountNamespace, Path: "/proc/4242/ns/mnt"}, `must not join the mount namespace "/proc/4242/ns/mnt"`},
			{"none", nil, `must not share the host's "mount" namespace`},
		} {
			nss := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace}}
			if tc.mount != nil {
				nss = append(nss, *tc.mount)
			}
			spec := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000}}, Linux: &specs.Linux{Namespaces: nss}}
			w, err := FromSpec(spec, nil, FromSpecOptions{Source: "eval"})
			if err != nil {
				t.Fatal(err)
			}
			v, bad, _ := outcome(t, p, w, RuleHostNamespaces)
			if want := tc.detail != ""; bad != want || (want && !strings.Contains(v.Detail, tc.detail)) {
				t.Errorf("%s: %s: violated=%v %q, want %v %q", file, tc.name, bad, v.Detail, want, tc.detail)
			}
			if tc.detail != "" && file != "audit-only" && v.Action != ActionEnforce {
				t.Errorf("%s: %s: action %s", file, tc.name, v.Action)
			}
		}
	}
}

// TestRemountRefused: a "remount" option on any mount reconfigures what is
// already mounted at its destination (runc: MS_REMOUNT, MS_RDONLY cleared),
// e.g. the runtime's read-only /sys. Found with real runc: an "mqueue"
// remount of /sys gave a writable host sysfs under baseline.yaml.
func TestRemountRefused(t *testing.T) {
	p, err := Load("../examples/policies/baseline.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mount{
		{Destination: "/sys", Type: "mqueue", Source: "x", Options: []string{"remount", "nosuid", "nodev", "noexec"}},
		{Destination: "/sys", Type: "tmpfs", Source: "tmpfs", Options: []string{"remount"}},
		{Destination: "/mnt", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "remount"}},
	} {
		w := fixtureWorkload(t, "baseline")
		w.Mounts = append(append([]Mount(nil), w.Mounts...), m)
		v, bad, _ := outcome(t, p, w, RuleHostPathMounts)
		if !bad || !strings.Contains(v.Detail, "option remount") {
			t.Errorf("%+v: violated=%v %q", m, bad, v.Detail)
		}
	}
	// Control: the same mqueue mount without remount is the runtime's own.
	w := fixtureWorkload(t, "baseline")
	w.Mounts = append(append([]Mount(nil), w.Mounts...), Mount{Destination: "/dev/mqueue2", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "nodev", "noexec"}})
	if v, bad, _ := outcome(t, p, w, RuleHostPathMounts); bad {
		t.Errorf("control refused: %s", v.Detail)
	}
}
