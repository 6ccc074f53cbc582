package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecordedRuntimeSpecs judges the OCI specs that real runtimes wrote on a
// Debian 12 machine (recorded by the hook's tests, see hook/testdata/README.md:
// podman 4.3.1 + runc 1.1.5, `runc spec`, containerd 2.4.2 CRI), so the rules
// are checked against what runtimes really produce, not only against specs
// generated from containerd's library.
func TestRecordedRuntimeSpecs(t *testing.T) {
	// The recordings ran the runtimes with private roots (podman --root
	// /tmp/f-podman/root --runroot /tmp/f-podman/runroot; containerd with
	// root and state under /tmp/pge2e-3106262750): a node that does so lists
	// them in runtimeDirs, as this policy does.
	p, err := LoadBytes("recorded.yaml", []byte(header+`metadata: {name: recorded}
spec:
  defaultAction: enforce
  rules:
    hostPathMounts:
      runtimeDirs:
        - /tmp/f-podman/root
        - /tmp/f-podman/runroot
        - /tmp/pge2e-3106262750/root/io.containerd.grpc.v1.cri/sandboxes
        - /tmp/pge2e-3106262750/state/io.containerd.grpc.v1.cri/sandboxes
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir      string
		violated []string
		deferred []string
	}{
		// podman's default seccomp profile (containers/common seccomp.json)
		// allows unshare, setns, mount, the new mount API, pivot_root,
		// keyctl and clone3 without conditions, for containers nested in
		// containers: judged by what it blocks, it lets those through.
		{"podman/default", []string{"apparmor", "privilegeEscalation", "runAsRoot", "seccomp"}, nil},
		{"podman/cap-sys-admin", []string{"apparmor", "capabilities", "privilegeEscalation", "runAsRoot", "seccomp"}, nil},
		{"podman/pid-host", []string{"apparmor", "hostNamespaces", "privilegeEscalation", "runAsRoot", "seccomp"}, nil},
		// podman --privileged in a sandbox without CAP_SYS_RESOURCE: 40 of 41
		// capabilities, still privileged; its sysfs and cgroup are writable.
		{"podman/privileged-pod", []string{"apparmor", "capabilities", "hostDevices", "hostPathMounts", "privilegeEscalation", "privileged", "procMount", "runAsRoot", "seccomp"}, nil},
		{"podman/user1000-capdrop", []string{"apparmor", "privilegeEscalation", "seccomp"}, nil},
		{"runc", []string{"apparmor", "runAsRoot", "seccomp"}, nil},
		// containerd CRI without the sandbox spec: namespace paths and pod
		// sysctls cannot be judged from this spec alone.
		{"containerd", []string{"apparmor", "seccomp"}, []string{"hostNamespaces", "sysctls"}},
	} {
		path := filepath.Join("..", "hook", "testdata", tc.dir, "config.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := ParseSpec(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// containerd's spec, vouched for as the hook does with
		// --identity-from=containerd: its pod sysctls are in the
		// sandbox spec, not read here.
		w, err := FromSpec(spec, nil, FromSpecOptions{Source: "test", Container: ContainerIdentity{Name: "c"}, PodSysctlsInSandbox: tc.dir == "containerd"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		d := Evaluate(p, w, freshKernel(), testNow)
		var got []string
		for _, v := range d.Violations {
			got = append(got, v.Rule)
		}
		if !slices.Equal(got, tc.violated) || !slices.Equal(d.Deferred, tc.deferred) {
			t.Errorf("%s: violated %v deferred %v, want %v %v", tc.dir, got, d.Deferred, tc.violated, tc.deferred)
		}
	}
}
