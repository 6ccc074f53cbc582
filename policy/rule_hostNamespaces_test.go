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

// A namespace that can be proven the host's is reported even when another
// needs a resolver the front end does not have (patchgate eval): the
// missing pid namespace is the host's whatever the paths are. The rule is
// still deferred for the unknown ones the policy forbids, and only for those.
func TestHostNamespacesKnownAndUnknown(t *testing.T) {
	spec := loadFixtureFile(t, filepath.Join(specsDir, "hostNamespaces-deferred-cri", "config.json"))
	spec.Linux.Namespaces = slices.DeleteFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.PIDNamespace })
	w, err := FromSpec(spec, nil, FromSpecOptions{Container: ContainerIdentity{Name: "app"}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Seen.Has(FieldHostNamespaces) || !slices.Contains(w.HostNamespaces, "pid") || slices.Contains(w.HostNamespaces, "network") || !slices.Contains(w.UnknownNamespaces, "network") {
		t.Fatalf("host %v unknown %v seen %v", w.HostNamespaces, w.UnknownNamespaces, w.Seen.Has(FieldHostNamespaces))
	}
	v, bad, deferred := judgeNS(t, everyRuleEnforced(t), w, RuleHostNamespaces)
	if !bad || !deferred || v.Detail != `container "app" must not share the host's "pid" namespace (linux.namespaces)` {
		t.Fatalf("violated=%v deferred=%v %q", bad, deferred, v.Detail)
	}
	d := Evaluate(everyRuleEnforced(t), w, freshKernel(), testNow)
	if d.Verdict != Deny {
		t.Fatalf("proven host pid namespace not refused: %+v", d)
	}

	// The policy forbids only pid: the unknown network, ipc and uts do not
	// matter, so the rule is judged in full, not deferred.
	p, err := LoadBytes("n.yaml", []byte(header+"metadata: {name: n}\nspec: {rules: {hostNamespaces: {namespaces: [pid]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, deferred := judgeNS(t, p, w, RuleHostNamespaces); !bad || deferred {
		t.Errorf("pid-only policy: violated=%v deferred=%v", bad, deferred)
	}
	// Nothing proven, something unknown that the policy forbids: deferred,
	// never passed.
	w.HostNamespaces = nil
	if _, bad, deferred := judgeNS(t, everyRuleEnforced(t), w, RuleHostNamespaces); bad || !deferred {
		t.Errorf("only unknown: violated=%v deferred=%v", bad, deferred)
	}
	// Unknown types the policy does not forbid: judged, passed.
	if _, bad, deferred := judgeNS(t, p, w, RuleHostNamespaces); bad || deferred {
		t.Errorf("unknown but not forbidden: violated=%v deferred=%v", bad, deferred)
	}
}

// judgeNS is outcome, with deferred reported also beside a violation.
func judgeNS(t *testing.T, p *Policy, w *Workload, id string) (Violation, bool, bool) {
	t.Helper()
	d := Evaluate(p, w, freshKernel(), testNow)
	deferred := slices.Contains(d.Deferred, id)
	for _, x := range d.Violations {
		if x.Rule == id {
			return x, true, deferred
		}
	}
	return Violation{}, false, deferred
}
