package plugin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// loadCapture reads one captured pod/container pair from testdata/nri/<name>,
// unmarshalled with protojson as it was captured.
func loadCapture(t testing.TB, name string) (*api.PodSandbox, *api.Container) {
	t.Helper()
	read := func(file string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "nri", name, file))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pod, ctr := &api.PodSandbox{}, &api.Container{}
	if err := protojson.Unmarshal(read("nri-pod.json"), pod); err != nil {
		t.Fatalf("%s: pod: %v", name, err)
	}
	if err := protojson.Unmarshal(read("nri-container.json"), ctr); err != nil {
		t.Fatalf("%s: container: %v", name, err)
	}
	return pod, ctr
}

// The fields NRI can never show: these rules must always be deferred.
const neverSeen = policy.FieldCapabilities | policy.FieldPrivileged | policy.FieldNoNewPrivileges |
	policy.FieldAppArmor | policy.FieldProcMount | policy.FieldSysctls

func TestContainerWorkloadCaptures(t *testing.T) {
	base := containerFields | policy.FieldUser | policy.FieldHostNamespaces
	tests := []struct {
		name          string
		seen          policy.Field
		uid           uint32
		userNS        bool
		hostNS        []string
		hostMounts    []string // mount sources kept as user mounts (besides proc/tmpfs/...)
		devices       []string
		allowAll      bool
		seccompUncfd  bool
		sysRW         bool
		containerName string
	}{
		{name: "default-kubelet", seen: base, seccompUncfd: true, containerName: "default-kubelet"},
		{name: "device-fuse", seen: base, devices: []string{"/dev/fuse"}, seccompUncfd: true, containerName: "device-fuse"},
		{name: "host-pid", seen: base, hostNS: []string{"pid"}, seccompUncfd: true, containerName: "host-pid"},
		// A bind mount is left to the hook, which resolves its symlinks.
		{name: "hostpath-root", seen: base &^ policy.FieldMounts, hostMounts: []string{"/"}, seccompUncfd: true, containerName: "hostpath-root"},
		{name: "privileged", seen: base, allowAll: true, seccompUncfd: true, sysRW: true, containerName: "privileged"},
		{name: "seccomp-unconfined", seen: base, uid: 1000, seccompUncfd: true, containerName: "seccomp-unconfined"},
		// uid 0 in a user namespace whose mappings NRI does not show: the
		// user is left to the hook.
		{name: "userns", seen: containerFields | policy.FieldHostNamespaces, userNS: true, seccompUncfd: true, containerName: "userns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod, ctr := loadCapture(t, tc.name)
			w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
			if err != nil {
				t.Fatal(err)
			}
			if w.Seen != tc.seen {
				t.Errorf("Seen = %b, want %b", w.Seen, tc.seen)
			}
			if w.Seen&neverSeen != 0 {
				t.Errorf("Seen claims fields NRI cannot show: %b", w.Seen&neverSeen)
			}
			if w.Source != "nri" {
				t.Errorf("Source = %q", w.Source)
			}
			if w.User.UID != tc.uid || w.User.UserNamespace != tc.userNS {
				t.Errorf("User = %+v, want uid %d userns %v", w.User, tc.uid, tc.userNS)
			}
			if !slices.Equal(w.HostNamespaces, tc.hostNS) {
				t.Errorf("HostNamespaces = %v, want %v", w.HostNamespaces, tc.hostNS)
			}
			var binds []string
			for _, m := range w.Mounts {
				if m.Type == "bind" {
					binds = append(binds, m.Source)
				}
				switch m.Destination {
				case "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm":
					t.Errorf("runtime mount %s kept as a user mount", m.Destination)
				}
			}
			if !slices.Equal(binds, tc.hostMounts) {
				t.Errorf("bind mounts = %v, want %v", binds, tc.hostMounts)
			}
			if tc.name == "privileged" {
				if len(w.Devices) != 102 {
					t.Errorf("privileged: %d devices, want the 102 host devices captured", len(w.Devices))
				}
			} else {
				var devs []string
				for _, d := range w.Devices {
					devs = append(devs, d.Path)
				}
				if !slices.Equal(devs, tc.devices) {
					t.Errorf("devices = %v, want %v", devs, tc.devices)
				}
			}
			if w.DevicesAllowAll != tc.allowAll {
				t.Errorf("DevicesAllowAll = %v, want %v", w.DevicesAllowAll, tc.allowAll)
			}
			if w.SeccompUnconfined != tc.seccompUncfd {
				t.Errorf("SeccompUnconfined = %v, want %v", w.SeccompUnconfined, tc.seccompUncfd)
			}
			sysRW := false
			for _, m := range w.Mounts {
				if m.Destination == "/sys" && slices.Contains(m.Options, "rw") {
					sysRW = true
				}
			}
			if sysRW != tc.sysRW {
				t.Errorf("rw /sys = %v, want %v", sysRW, tc.sysRW)
			}
			if w.Pod.Namespace != "cap" || w.Pod.Name != "pod-"+tc.name || w.Pod.UID != tc.name+"-uid" {
				t.Errorf("Pod = %+v", w.Pod)
			}
			if w.Container.Name != tc.containerName || w.Container.Image != "docker.io/library/busybox:latest" || w.Container.ID != ctr.GetId() {
				t.Errorf("Container = %+v", w.Container)
			}
		})
	}
}

func TestPodWorkloadCaptures(t *testing.T) {
	for name, want := range map[string][]string{
		"default-kubelet": nil,
		"host-pid":        {"pid"},
		"privileged":      nil,
		"userns":          nil,
	} {
		pod, _ := loadCapture(t, name)
		w, err := PodWorkload(pod, hook.IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if w.Seen != policy.FieldHostNamespaces {
			t.Errorf("%s: Seen = %b, want only host namespaces", name, w.Seen)
		}
		if !slices.Equal(w.HostNamespaces, want) {
			t.Errorf("%s: HostNamespaces = %v, want %v", name, w.HostNamespaces, want)
		}
		if w.Pod.Name != "pod-"+name || w.Container.Name != "POD" {
			t.Errorf("%s: identity %+v %+v", name, w.Pod, w.Container)
		}
	}
}

func TestPodWithoutNamespacesIsUnseen(t *testing.T) {
	pod, ctr := loadCapture(t, "host-pid")
	pod.Linux.Namespaces = nil
	w, err := PodWorkload(pod, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Seen.Has(policy.FieldHostNamespaces) || len(w.HostNamespaces) != 0 {
		t.Errorf("pod without namespaces must leave host namespaces unseen, got %b %v", w.Seen, w.HostNamespaces)
	}
	cw, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if cw.Seen.Has(policy.FieldHostNamespaces) {
		t.Error("container of a pod without namespaces must leave host namespaces unseen")
	}
}

func TestNoUserIsUnseen(t *testing.T) {
	// containerd < 2.3 sends no user: the rule must be deferred, not pass.
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	ctr.User = nil
	w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Seen.Has(policy.FieldUser) {
		t.Error("user seen without a user")
	}
}

func TestInvalidInput(t *testing.T) {
	pod, ctr := loadCapture(t, "default-kubelet")
	if _, err := ContainerWorkload(pod, nil, hook.IdentityFromContainerd); err == nil {
		t.Error("nil container accepted")
	}
	if _, err := ContainerWorkload(nil, ctr, hook.IdentityFromContainerd); err == nil {
		t.Error("nil pod accepted")
	}
	if _, err := PodWorkload(nil, hook.IdentityFromContainerd); err == nil {
		t.Error("nil pod accepted")
	}
}

func TestSeccompPolicyConfines(t *testing.T) {
	pod, ctr := loadCapture(t, "default-kubelet")
	ctr.Linux.SeccompPolicy = &api.LinuxSeccomp{
		DefaultAction: "SCMP_ACT_ERRNO",
		Syscalls:      []*api.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_ALLOW"}},
	}
	w, _ := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if w.SeccompUnconfined {
		t.Error("a real filter counted as unconfined")
	}
	ctr.Linux.SeccompPolicy = &api.LinuxSeccomp{DefaultAction: "SCMP_ACT_ALLOW"}
	w, _ = ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if !w.SeccompUnconfined {
		t.Error("allow-everything filter counted as confined")
	}
}

func TestAdjustmentsAreJudged(t *testing.T) {
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	adj := &api.ContainerAdjustment{}
	adj.AddMount(&api.Mount{Destination: "/host-etc", Source: "/etc", Type: "bind", Options: []string{"rbind", "rw"}})
	adj.AddDevice(&api.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
	adj.RemoveNamespace(&api.LinuxNamespace{Type: "network"})
	adj.AddAnnotation("other.example/x", "1")
	adj.RemoveMount("/etc/hosts")
	got := ApplyAdjustment(ctr, adj)

	w, err := ContainerWorkload(pod, got, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(w.Mounts, func(m policy.Mount) bool { return m.Source == "/etc" && m.Destination == "/host-etc" }) {
		t.Errorf("adjusted mount missing: %+v", w.Mounts)
	}
	if !slices.ContainsFunc(w.Devices, func(d policy.Device) bool { return d.Path == "/dev/kmsg" }) {
		t.Errorf("adjusted device missing: %+v", w.Devices)
	}
	if !slices.Contains(w.HostNamespaces, "network") {
		t.Errorf("removed network namespace not judged as host: %v", w.HostNamespaces)
	}
	if w.Annotations["other.example/x"] != "1" {
		t.Error("adjusted annotation missing")
	}
	for _, m := range got.Mounts {
		if m.Destination == "/etc/hosts" {
			t.Error("mount marked for removal still present")
		}
	}
	// The pristine container is untouched.
	if len(ctr.Linux.Devices) != 0 || ctr.Annotations["other.example/x"] != "" {
		t.Error("ApplyAdjustment modified the pristine container")
	}
	if !slices.ContainsFunc(ctr.Linux.Namespaces, func(n *api.LinuxNamespace) bool { return n.Type == "network" }) {
		t.Error("ApplyAdjustment removed a namespace from the pristine container")
	}
}

func TestAdjustmentAllowAllDevicesAndCDI(t *testing.T) {
	pod, ctr := loadCapture(t, "seccomp-unconfined")
	adj := &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
		Resources: &api.LinuxResources{Devices: []*api.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}},
		Sysctl:    map[string]string{"kernel.msgmax": "1"},
	}}
	adj.AddCDIDevice(&api.CDIDevice{Name: "vendor.com/gpu=0"})
	w, err := ContainerWorkload(pod, ApplyAdjustment(ctr, adj), hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if !w.DevicesAllowAll {
		t.Error("allow-all device rule from an adjustment not seen")
	}
	if w.Seen.Has(policy.FieldDevices) || w.Seen.Has(policy.FieldMounts) {
		t.Error("CDI devices hide devices and mounts from NRI: they must be deferred")
	}
	if w.Sysctls["kernel.msgmax"] != "1" {
		t.Error("adjusted sysctl not recorded")
	}
}

// TestDeviceCgroupRules: NRI's device cgroup rules reach the same model as
// the hook's; an absent number is any, -1 too, and order counts.
func TestDeviceCgroupRules(t *testing.T) {
	m := func(v int64) *api.OptionalInt64 { return &api.OptionalInt64{Value: v} }
	deny := &api.LinuxDeviceCgroup{Access: "rwm"}
	for _, tc := range []struct {
		rules    []*api.LinuxDeviceCgroup
		allowAll bool
		allowed  []policy.DeviceRule
	}{
		{[]*api.LinuxDeviceCgroup{deny}, false, nil},
		{[]*api.LinuxDeviceCgroup{deny, {Allow: true, Access: "rwm"}}, true, nil},
		{[]*api.LinuxDeviceCgroup{{Allow: true, Type: "a", Access: "rwm"}}, true, nil},
		{[]*api.LinuxDeviceCgroup{{Allow: true, Type: "a", Major: m(-1), Minor: m(-1), Access: "rwm"}}, true, nil},
		{[]*api.LinuxDeviceCgroup{{Allow: true, Access: "r"}}, true, nil},
		{[]*api.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, deny}, false, nil},
		{[]*api.LinuxDeviceCgroup{deny, {Allow: true, Type: "c", Major: m(10), Minor: m(229), Access: "rwm"}}, false,
			[]policy.DeviceRule{{Type: "c", Major: 10, Minor: 229, Access: "rwm"}}},
		{[]*api.LinuxDeviceCgroup{deny, {Allow: true, Type: "b", Access: "rwm"}, {Type: "b", Major: m(8), Minor: m(0), Access: "rw"}}, false,
			[]policy.DeviceRule{{Type: "b", Major: -1, Minor: -1, Access: "rwm"}}},
		{[]*api.LinuxDeviceCgroup{deny, {Allow: true, Type: "c", Major: m(1), Access: "rw"}}, false,
			[]policy.DeviceRule{{Type: "c", Major: 1, Minor: -1, Access: "rw"}}},
	} {
		all, got := policy.DeviceCgroupAllowed(deviceCgroupRules(tc.rules))
		if all != tc.allowAll || !slices.Equal(got, tc.allowed) {
			t.Errorf("%v: got %v %+v, want %v %+v", tc.rules, all, got, tc.allowAll, tc.allowed)
		}
	}
}

// TestHostDevicesCaptures judges the real NRI captures under the shipped
// policies: the privileged container's 102 host devices and allow-all
// cgroup are refused with a short detail; /dev/fuse is refused unless the
// policy lists "c 10:229"; the kubelet default passes.
func TestHostDevicesCaptures(t *testing.T) {
	var pols []*policy.Policy
	for _, f := range []string{"../examples/policies/baseline.yaml", "../examples/policies/restricted.yaml"} {
		p, err := policy.Load(f, "")
		if err != nil {
			t.Fatal(err)
		}
		pols = append(pols, p)
	}
	pols = append(pols, policy.Default())
	fuse, err := policy.LoadBytes("fuse.yaml", []byte("apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: fuse}\nspec: {rules: {hostDevices: {allowed: [\"c 10:229\"]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := &policy.KernelState{Release: "6.1.0-18-amd64", ObservedAt: time.Now()}
	judge := func(p *policy.Policy, name string) (policy.Violation, bool) {
		pod, ctr := loadCapture(t, name)
		w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		d := policy.Evaluate(p, w, k, time.Now())
		for _, v := range d.Violations {
			if v.Rule == policy.RuleHostDevices {
				return v, true
			}
		}
		if slices.Contains(d.Deferred, policy.RuleHostDevices) {
			t.Fatalf("%s: hostDevices deferred", name)
		}
		return policy.Violation{}, false
	}
	for _, p := range pols {
		// 95: the 102 captured devices less the seven runtime defaults
		// (null, zero, full, random, urandom, tty, ptmx), judged by number.
		if v, bad := judge(p, "privileged"); !bad || v.Action != policy.ActionEnforce ||
			!strings.HasPrefix(v.Detail, `container "privileged" must not have 95 host devices, first "/dev/autofs" c 10:235,`) ||
			!strings.HasSuffix(v.Detail, "or a device cgroup that allows every device (linux.resources.devices)") || len(v.Detail) > 400 {
			t.Errorf("%s privileged: %v %+v", p.Name(), bad, v)
		}
		if v, bad := judge(p, "device-fuse"); !bad || v.Detail != `container "device-fuse" must not have host device "/dev/fuse" c 10:229 (linux.devices) or a device cgroup that allows c 10:229 rwm (linux.resources.devices)` {
			t.Errorf("%s device-fuse: %v %+v", p.Name(), bad, v)
		}
		for _, name := range []string{"default-kubelet", "host-pid", "seccomp-unconfined"} {
			if v, bad := judge(p, name); bad {
				t.Errorf("%s %s: %+v", p.Name(), name, v)
			}
		}
	}
	if v, bad := judge(fuse, "device-fuse"); bad {
		t.Errorf("device-fuse with c 10:229 allowed: %+v", v)
	}
	if _, bad := judge(fuse, "privileged"); !bad {
		t.Error("privileged admitted with c 10:229 allowed")
	}
}

// TestContainerWorkloadMountNamespace: the validator sees a mount namespace
// another NRI plugin replaced with a path (AddOrReplaceNamespace) or removed,
// on the real capture of a default kubelet container.
func TestContainerWorkloadMountNamespace(t *testing.T) {
	pod, ctr := loadCapture(t, "default-kubelet")
	w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.MountNamespacePath != "" || slices.Contains(w.HostNamespaces, "mount") {
		t.Fatalf("default container: mount path %q, host %v", w.MountNamespacePath, w.HostNamespaces)
	}
	for _, ns := range ctr.GetLinux().GetNamespaces() {
		if ns.GetType() == "mount" {
			ns.Path = "/proc/1/ns/mnt"
		}
	}
	if w, err = ContainerWorkload(pod, ctr, hook.IdentityFromContainerd); err != nil || w.MountNamespacePath != "/proc/1/ns/mnt" {
		t.Fatalf("joined: %q, %v", w.MountNamespacePath, err)
	}
	var kept []*api.LinuxNamespace
	for _, ns := range ctr.GetLinux().GetNamespaces() {
		if ns.GetType() != "mount" {
			kept = append(kept, ns)
		}
	}
	ctr.Linux.Namespaces = kept
	if w, err = ContainerWorkload(pod, ctr, hook.IdentityFromContainerd); err != nil || !slices.Contains(w.HostNamespaces, "mount") {
		t.Fatalf("no mount namespace: host %v, %v", w.HostNamespaces, err)
	}
}
