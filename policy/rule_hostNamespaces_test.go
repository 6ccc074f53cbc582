package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostNamespaces(t *testing.T) {
	testRuleOnFixtures(t, RuleHostNamespaces, []ruleFixtureCase{
		{"baseline", ""},
		{"hostNamespaces-pass-cri", ""},
		{"hostNamespaces-fail", `container "app" must not share the host's "network", "pid" namespaces (linux.namespaces)`},
		{"hostNamespaces-fail-cri", `container "app" must not share the host's "network" namespace (linux.namespaces)`},
	})
	testRuleDeferred(t, RuleHostNamespaces, FieldHostNamespaces)

	// A CRI container without its sandbox spec: the paths cannot be told
	// apart without I/O, so the rule is deferred, never passed.
	w := fixtureWorkload(t, "hostNamespaces-deferred-cri")
	if _, bad, deferred := outcome(t, everyRuleEnforced(t), w, RuleHostNamespaces); bad || !deferred {
		t.Errorf("CRI container without sandbox: violated=%v deferred=%v", bad, deferred)
	}
	// Only the namespaces the policy lists count.
	p, err := LoadBytes("n.yaml", []byte(header+"metadata: {name: n}\nspec: {rules: {hostNamespaces: {namespaces: [ipc]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, _ := outcome(t, p, fixtureWorkload(t, "hostNamespaces-fail"), RuleHostNamespaces); bad {
		t.Error("host network and pid judged although the policy lists only ipc")
	}
}

// TestHostNamespaceResolver compares inodes in a host-root fixture tree: the
// namespace files are hard links, as /proc/<pid>/ns/<type> of a process in
// init's namespace is the same inode as /proc/1/ns/<type>.
func TestHostNamespaceResolver(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) string {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o444); err != nil {
			t.Fatal(err)
		}
		return full
	}
	hostNet := mk("proc/1/ns/net")
	mk("proc/1/ns/pid")
	mk("proc/4242/ns/pid") // the sandbox's own pid namespace
	if err := os.MkdirAll(filepath.Join(root, "proc/4242/ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(hostNet, filepath.Join(root, "proc/4242/ns/net")); err != nil {
		t.Fatal(err)
	}
	resolve := HostNamespaceResolver(root)
	if h, err := resolve("network", "/proc/4242/ns/net"); err != nil || !h {
		t.Errorf("net: %v %v, want host", h, err)
	}
	if h, err := resolve("pid", "/proc/4242/ns/pid"); err != nil || h {
		t.Errorf("pid: %v %v, want not host", h, err)
	}
	if _, err := resolve("ipc", "/proc/4242/ns/ipc"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}

	spec := loadFixtureFile(t, filepath.Join(specsDir, "hostNamespaces-deferred-cri", "config.json"))
	// Keep only net and pid, which the tree has; ipc and uts are private.
	var nss []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace, specs.PIDNamespace, specs.MountNamespace:
			nss = append(nss, ns)
		case specs.IPCNamespace, specs.UTSNamespace:
			nss = append(nss, specs.LinuxNamespace{Type: ns.Type})
		}
	}
	spec.Linux.Namespaces = nss
	w, err := FromSpec(spec, nil, FromSpecOptions{HostNamespace: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Seen.Has(FieldHostNamespaces) {
		t.Fatal("resolver given, namespaces still unseen")
	}
	// cgroup, time and user are absent from containerd's default spec:
	// the container stays in the host's.
	if want := []string{"cgroup", "network", "time", "user"}; !slices.Equal(w.HostNamespaces, want) {
		t.Errorf("host namespaces %v, want %v", w.HostNamespaces, want)
	}
}
