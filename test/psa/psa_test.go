package psa

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fixtures loads the pinned fixtures once per test binary; without the go command or the
// module proxy (and nothing cached) the tests skip, or fail under CI=true.
func fixtures(t *testing.T) []Fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := DownloadModule(ctx)
	if errors.Is(err, ErrModuleUnavailable) && os.Getenv("CI") != "true" {
		t.Skipf("fixture module unavailable (a failure under CI=true): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	fx, err := LoadFixtures(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

func TestLoadFixtures(t *testing.T) {
	fx := fixtures(t)
	count := map[string]int{}
	for _, f := range fx {
		count[f.Level+"/"+f.Expect]++
	}
	// 144 Pods for v1.34, as Kubernetes generates them.
	want := map[string]int{"baseline/pass": 14, "baseline/fail": 34, "restricted/pass": 22, "restricted/fail": 74}
	if !reflect.DeepEqual(count, want) || len(fx) != 144 {
		t.Fatalf("fixtures per level = %v (total %d), want %v", count, len(fx), want)
	}
}

func TestDecodePodIsStrict(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"unknown-field": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: [{name: c, image: i, securityContex: {privileged: true}}]\n",
		"duplicate":     "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  hostPID: false\n  hostPID: true\n  containers: [{name: c, image: i}]\n",
		"not-a-pod":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
	} {
		p := dir + "/" + name + ".yaml"
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := DecodePod(p); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func testKubelet() *Kubelet {
	return &Kubelet{
		RootDir:            "/k",
		SeccompProfileRoot: "/k/seccomp",
		SeccompDefault:     true,
		UsernsHostID:       65536 * 8,
		CgroupParent:       "/pg",
		Image:              "registry.k8s.io/pause:latest",
		ImageUser:          "65535:65535",
		MaskedPaths:        DefaultMaskedPaths("/nonexistent"),
	}
}

func convert(t *testing.T, fx []Fixture, id string, k *Kubelet) *Pod {
	t.Helper()
	for _, f := range fx {
		if f.ID() == id {
			p, err := k.Convert(f.Pod, "psa", "uid-1")
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			return p
		}
	}
	t.Fatalf("no fixture %s", id)
	return nil
}

func byName(t *testing.T, p *Pod, name string) *LinuxContainerSecurityContext {
	t.Helper()
	for _, c := range p.Containers {
		if c.Name == name {
			return c.Config.Linux.SecurityContext
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// The security fields kubelet v1.34 sends for the fixtures, one field per case.
func TestConvert(t *testing.T) {
	fx := fixtures(t)
	k := testKubelet()

	base := convert(t, fx, "baseline/v1.34/pass/base", k)
	if len(base.Containers) != 2 || !base.Containers[0].Init || base.Containers[0].Name != "initcontainer1" || base.Containers[1].Init {
		t.Fatalf("container order = %+v", base.Containers)
	}
	sc := byName(t, base, "container1")
	if sc.Seccomp == nil || sc.Seccomp.ProfileType != ProfileRuntimeDefault || sc.NoNewPrivs || sc.Privileged ||
		sc.RunAsUser == nil || sc.RunAsUser.Value != 65535 || sc.Apparmor != nil ||
		!reflect.DeepEqual(sc.ReadonlyPaths, defaultReadonlyPaths) || len(sc.MaskedPaths) != 12 ||
		sc.NamespaceOptions.Pid != NamespaceContainer || sc.NamespaceOptions.UsernsOptions.Mode != NamespaceNode {
		t.Errorf("base container1 = %+v", sc)
	}
	if s := base.Sandbox.Linux.SecurityContext; s.Privileged || s.Seccomp.ProfileType != ProfileRuntimeDefault || base.Sandbox.Hostname != "base" {
		t.Errorf("base sandbox = %+v", base.Sandbox)
	}
	// Without seccompDefault a pod that names no profile runs Unconfined.
	k2 := testKubelet()
	k2.SeccompDefault = false
	if sc := byName(t, convert(t, fx, "baseline/v1.34/pass/base", k2), "container1"); sc.Seccomp.ProfileType != ProfileUnconfined {
		t.Errorf("seccompDefault=false: %+v", sc.Seccomp)
	}
	// The kubelet-owned files are mounted from the pod's directory.
	mounts := base.Containers[1].Config.Mounts
	if len(mounts) != 2 || mounts[0].HostPath != "/k/pods/uid-1/etc-hosts" || mounts[0].ContainerPath != "/etc/hosts" ||
		mounts[1].ContainerPath != "/dev/termination-log" || !strings.HasPrefix(mounts[1].HostPath, "/k/pods/uid-1/containers/container1/") {
		t.Errorf("base mounts = %+v", mounts)
	}

	// privileged on an init container makes the sandbox privileged.
	p := convert(t, fx, "baseline/v1.34/fail/privileged1", k)
	if !p.Sandbox.Linux.SecurityContext.Privileged || !byName(t, p, "initcontainer1").Privileged || byName(t, p, "container1").Privileged {
		t.Errorf("privileged1 = %+v", p.Sandbox.Linux.SecurityContext)
	}
	// Capabilities are sent verbatim: no CAP_ prefix added or removed, case kept.
	if c := byName(t, convert(t, fx, "baseline/v1.34/fail/capabilities_baseline3", k), "container1").Capabilities; c == nil || !reflect.DeepEqual(c.AddCapabilities, []string{"CAP_CHOWN"}) {
		t.Errorf("capabilities_baseline3 = %+v", c)
	}
	if c := byName(t, convert(t, fx, "baseline/v1.34/fail/capabilities_baseline2", k), "container1").Capabilities; c == nil || !reflect.DeepEqual(c.AddCapabilities, []string{"chown"}) {
		t.Errorf("capabilities_baseline2 = %+v", c)
	}
	// Host namespaces.
	if ns := convert(t, fx, "baseline/v1.34/fail/hostnamespaces2", k).Sandbox.Linux.SecurityContext.NamespaceOptions; ns.Pid != NamespaceNode || ns.Network != NamespacePod {
		t.Errorf("hostPID = %+v", ns)
	}
	hn := convert(t, fx, "baseline/v1.34/fail/hostnamespaces1", k)
	if hn.Sandbox.Linux.SecurityContext.NamespaceOptions.Network != NamespaceNode || hn.Sandbox.Hostname != "" || len(hn.Containers[1].Config.Mounts) != 2 {
		t.Errorf("hostNetwork = %+v", hn.Sandbox)
	}
	// procMount Unmasked: no masked or read-only paths; hostUsers: false maps ids.
	pm := convert(t, fx, "baseline/v1.34/fail/procmount0", k)
	if sc := byName(t, pm, "container1"); sc.MaskedPaths != nil || sc.ReadonlyPaths != nil {
		t.Errorf("Unmasked = %+v", sc)
	}
	if sc := byName(t, pm, "initcontainer1"); len(sc.MaskedPaths) == 0 {
		t.Errorf("Default = %+v", sc)
	}
	if u := pm.Sandbox.Linux.SecurityContext.NamespaceOptions.UsernsOptions; u.Mode != NamespacePod || len(u.Uids) != 1 || u.Uids[0] != (IDMapping{HostID: 65536 * 8, ContainerID: 0, Length: 65536}) {
		t.Errorf("userns = %+v", u)
	}
	// seccomp: the pod's Localhost profile is a path under the profile root; a container's
	// field wins over the pod's.
	lp := convert(t, fx, "restricted/v1.34/pass/seccompprofile_restricted2", k)
	if s := byName(t, lp, "initcontainer1").Seccomp; s.ProfileType != ProfileLocalhost || s.LocalhostRef != "/k/seccomp/testing" {
		t.Errorf("Localhost = %+v", s)
	}
	if s := byName(t, convert(t, fx, "baseline/v1.34/fail/seccompprofile_baseline2", k), "initcontainer1").Seccomp; s.ProfileType != ProfileUnconfined {
		t.Errorf("Unconfined = %+v", s)
	}
	// allowPrivilegeEscalation: false is no_new_privs; runAsUser from the pod.
	ru := convert(t, fx, "restricted/v1.34/pass/runasuser0", k)
	if sc := byName(t, ru, "container1"); !sc.NoNewPrivs || sc.RunAsUser.Value != 1000 || sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.DropCapabilities, []string{"ALL"}) {
		t.Errorf("runasuser0 = %+v", sc)
	}
	// AppArmor, annotation form.
	aa := convert(t, fx, "baseline/v1.34/fail/apparmorprofile0", k)
	if sc := byName(t, aa, "container1"); sc.Apparmor == nil || sc.Apparmor.ProfileType != ProfileUnconfined || sc.ApparmorProfile != "unconfined" || byName(t, aa, "initcontainer1").Apparmor != nil {
		t.Errorf("apparmor unconfined = %+v", sc)
	}
	if len(aa.Refusals) != 0 {
		t.Errorf("kubelet refuses unconfined on a host without AppArmor: %v", aa.Refusals)
	}
	al := convert(t, fx, "baseline/v1.34/pass/apparmorprofile0", k)
	if sc := byName(t, al, "container1"); sc.Apparmor.ProfileType != ProfileLocalhost || sc.Apparmor.LocalhostRef != "foo" || sc.ApparmorProfile != "localhost/foo" {
		t.Errorf("apparmor localhost = %+v", sc)
	}
	if len(al.Refusals) != 1 || !strings.Contains(al.Refusals[0], "AppArmor is not enabled") {
		t.Errorf("kubelet admission without AppArmor = %v", al.Refusals)
	}
	// Sysctls go to the sandbox; kubelet refuses one outside its safe list.
	if s := convert(t, fx, "baseline/v1.34/pass/sysctls1", k); s.Sandbox.Linux.Sysctls["net.ipv4.tcp_rmem"] != "4096 87380 16777216" || len(s.Refusals) != 0 {
		t.Errorf("sysctls1 = %+v %v", s.Sandbox.Linux.Sysctls, s.Refusals)
	}
	if s := convert(t, fx, "baseline/v1.34/fail/sysctls0", k); len(s.Refusals) != 1 || !strings.Contains(s.Refusals[0], "SysctlForbidden") {
		t.Errorf("sysctls0 refusals = %v", s.Refusals)
	}
	// verifyRunAsNonRoot: runAsUser 0 with runAsNonRoot, and a root image.
	if c := convert(t, fx, "restricted/v1.34/fail/runasuser2", k).Containers[0]; !strings.Contains(c.Refusal, "runAsUser breaks non-root policy") {
		t.Errorf("runasuser2 init refusal = %q", c.Refusal)
	}
	kr := testKubelet()
	kr.ImageUser = ""
	if c := convert(t, fx, "restricted/v1.34/pass/base", kr).Containers[1]; !strings.Contains(c.Refusal, "image will run as root") {
		t.Errorf("root image refusal = %q", c.Refusal)
	}
	// A Windows pod is not admitted on a Linux node.
	if w := convert(t, fx, "restricted/v1.34/pass/base_windows", k); len(w.Refusals) != 1 || !strings.Contains(w.Refusals[0], "PodOSNotSupported") {
		t.Errorf("windows refusals = %v", w.Refusals)
	}
}

// A hostPath volume that a container mounts becomes a CRI mount, read-only flags kept, under
// HostPathDir when set; a volume no container mounts is not sent at all.
func TestConvertHostPath(t *testing.T) {
	fx := fixtures(t)
	var pod *Fixture
	for i := range fx {
		if fx[i].ID() == "baseline/v1.34/fail/hostpathvolumes1" {
			pod = &fx[i]
		}
	}
	if pod == nil {
		t.Fatal("no hostpathvolumes1")
	}
	k := testKubelet()
	p, err := k.Convert(pod.Pod, "psa", "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.HostPaths) != 0 || len(p.Containers[1].Config.Mounts) != 2 {
		t.Fatalf("unmounted hostPath volumes were sent: %v %+v", p.HostPaths, p.Containers[1].Config.Mounts)
	}
	mounted := pod.Pod.DeepCopy()
	mounted.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "volume-hostpath-a", MountPath: "/a", ReadOnly: true},
		{Name: "volume-hostpath-b", MountPath: "/b"},
	}
	k.HostPathDir = "/tmp/hp"
	p, err = k.Convert(mounted, "psa", "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	m := p.Containers[1].Config.Mounts
	if !reflect.DeepEqual(p.HostPaths, []string{"/tmp/hp/a", "/tmp/hp/b"}) || len(m) != 4 ||
		m[0] != (Mount{ContainerPath: "/a", HostPath: "/tmp/hp/a", Readonly: true}) || m[1] != (Mount{ContainerPath: "/b", HostPath: "/tmp/hp/b"}) {
		t.Errorf("hostPath mounts = %v %+v", p.HostPaths, m)
	}
	// A subPath is bind-mounted by kubelet into the pod's own directory first.
	mounted.Spec.Containers[0].VolumeMounts[1].SubPath = "../x/sub"
	p, err = k.Convert(mounted, "psa", "uid-1")
	if err != nil {
		t.Fatal(err)
	}
	m = p.Containers[1].Config.Mounts
	if want := (Bind{From: "/tmp/hp/b/x/sub", To: "/k/pods/uid-1/volume-subpaths/volume-hostpath-b/container1/1"}); len(p.SubPathBinds) != 1 || p.SubPathBinds[0] != want || m[1].HostPath != want.To {
		t.Errorf("subPath: binds %+v mounts %+v", p.SubPathBinds, m)
	}
}

func TestPossibleCPUs(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/sys/devices/system/cpu/cpu1/thermal_throttle", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/sys/devices/system/cpu/possible", []byte("0-2,5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := possibleCPUs(dir); !reflect.DeepEqual(got, []int{0, 1, 2, 5}) {
		t.Errorf("possibleCPUs = %v", got)
	}
	got := DefaultMaskedPaths(dir)
	if len(got) != 13 || got[12] != "/sys/devices/system/cpu/cpu1/thermal_throttle" {
		t.Errorf("DefaultMaskedPaths = %v", got)
	}
}
