//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/patchgate/patchgate/test/harness"
	"github.com/patchgate/patchgate/test/psa"
)

// Pod Security parity: Kubernetes' own Pod Security conformance fixtures (module
// k8s.io/pod-security-admission, test/testdata/{baseline,restricted}/v1.34) run on a real
// containerd with patchgate, each Pod turned into the CRI requests kubelet v1.34 sends
// (test/psa). patchgate under examples/policies/baseline.yaml must admit every baseline/pass
// Pod and refuse every baseline/fail Pod; under restricted.yaml it must admit restricted/pass
// and refuse restricted/fail and baseline/fail. A fixture whose check a node cannot see is out
// of scope (outOfScope); a fixture where the node rightly decides otherwise is in
// nodeDecides with the reason; a real patchgate gap is in knownGaps. Every other fixture must
// agree.

// psaNamespace is matched by no exemption of the shipped policies.
const psaNamespace = "psa-parity"

// psaImage is the fixtures' image (registry.k8s.io/pause, kubelet adds :latest), built by the
// harness with the real pause image's config: entrypoint /pause, user 65535:65535.
const (
	psaImage     = "registry.k8s.io/pause:latest"
	psaImageUser = "65535:65535"
)

// outOfScope are fixtures whose only violation is one a node cannot see, with why. They are
// not run (the log says so), and they count in neither direction.
var outOfScope = map[string]string{}

func init() {
	for _, level := range psa.Levels {
		add := func(name, reason string) { outOfScope[level+"/"+psa.FixtureVersion+"/"+name] = reason }
		for i := 0; i < 3; i++ {
			add(fmt.Sprintf("fail/hostports%d", i), "hostPort: a port mapping in the CRI sandbox config that the CNI plugin applies; there is no OCI or NRI field for it")
		}
		for i := 0; i < 5; i++ {
			add(fmt.Sprintf("fail/hostprobesandhostlifecycle%d", i), "probe/lifecycle handler host: kubelet itself connects to it; the runtime never sees probes")
			add(fmt.Sprintf("fail/selinuxoptions%d", i), "SELinux options: patchgate has no SELinux rule, and on a host without SELinux the runtime drops the label")
		}
		for i := 0; i < 2; i++ {
			add(fmt.Sprintf("fail/windowshostprocess%d", i), "Windows options: ignored on a Linux node")
			add(fmt.Sprintf("fail/hostpathvolumes%d", i), "a hostPath volume that no container mounts: kubelet sends no mount, and no container can reach the path")
		}
		add("pass/selinuxoptions1", `SELinux options: containerd refuses the fixture's level "somevalue" as malformed (internal/cri/server, before NRI), whatever the host`)
	}
	for i := 0; i < 20; i++ {
		outOfScope[fmt.Sprintf("restricted/%s/fail/restrictedvolumes%d", psa.FixtureVersion, i)] = "a volume that no container mounts (cloud, network, gitRepo, hostPath ...): kubelet sends no mount"
	}
	outOfScope["restricted/"+psa.FixtureVersion+"/pass/base_windows"] = "a Windows pod (spec.os.name: windows): kubelet on a Linux node refuses it (PodOSNotSupported)"
}

// psaDecision is what the node did with a fixture.
type psaDecision string

const (
	admitted       psaDecision = "admitted"
	refusedByPG    psaDecision = "refused by patchgate"
	refusedRuntime psaDecision = "refused by the runtime, not by patchgate"
)

// nodeDecision is a fixture where the node's decision is not simply patchgate agreeing with
// the API server: the decision the test requires, and why it is right.
type nodeDecision struct {
	decision psaDecision
	reason   string
	// onlyWithoutAppArmor: on a host with AppArmor the entry does not apply, and the fixture
	// must agree.
	onlyWithoutAppArmor bool
}

// nodeDecides is keyed by "<policy> <fixture id>". These are the fixtures where a node rightly
// decides otherwise than the API server, or refuses before patchgate is asked; docs/security.md
// lists them.
var nodeDecides = map[string]nodeDecision{}

func init() {
	v := psa.FixtureVersion
	set := func(policy, id string, d nodeDecision) { nodeDecides[policy+" "+id] = d }
	noAppArmor := nodeDecision{admitted, "an explicit AppArmor unconfined on a host without AppArmor: containerd writes no profile for it, nor for a container that names none, so the container is baseline/pass/base's: no confinement is dropped (on a host with AppArmor the empty profile is unconfined and refused, be73e5e)", true}
	localAppArmor := nodeDecision{refusedRuntime, `a Localhost AppArmor profile "foo" that is not loaded: without AppArmor on the host kubelet refuses the pod ("AppArmor is not enabled on the host") and containerd the container ("apparmor is not supported"); with AppArmor containerd refuses it ("apparmor profile not found foo"); both before NRI`, false}
	unknownSysctl := nodeDecision{refusedRuntime, `an unknown sysctl: kubelet refuses the pod (SysctlForbidden), and runc refuses the sandbox ("not in a separate kernel namespace"); patchgate reads pod sysctls from the sandbox spec when the first container starts, which never happens`, false}
	for _, policy := range []string{"baseline", "restricted"} {
		set(policy, "baseline/"+v+"/fail/sysctls0", unknownSysctl)
	}
	set("baseline", "baseline/"+v+"/fail/apparmorprofile0", noAppArmor)
	set("baseline", "baseline/"+v+"/fail/apparmorprofile1", noAppArmor)
	set("baseline", "baseline/"+v+"/pass/apparmorprofile0", localAppArmor)
	netRaw := nodeDecision{admitted, "adds NET_RAW, which containerd gives every container anyway (pkg/oci defaultUnixCaps): the capabilities are baseline/pass/base's, and baseline.yaml allows containerd's default set", false}
	set("baseline", "baseline/"+v+"/fail/capabilities_baseline0", netRaw)
	set("baseline", "baseline/"+v+"/fail/capabilities_baseline1", netRaw)
	set("baseline", "baseline/"+v+"/fail/capabilities_baseline2", nodeDecision{admitted, `adds "chown": containerd upper-cases a CRI capability and prefixes CAP_, so the container gets CAP_CHOWN, which is in containerd's default set; Pod Security judges the spelling`, false})

	set("restricted", "restricted/"+v+"/fail/sysctls0", unknownSysctl)
	set("restricted", "restricted/"+v+"/fail/apparmorprofile0", noAppArmor)
	set("restricted", "restricted/"+v+"/fail/apparmorprofile1", noAppArmor)
	set("restricted", "restricted/"+v+"/pass/apparmorprofile0", localAppArmor)
	for i := 0; i < 4; i++ {
		set("restricted", fmt.Sprintf("restricted/%s/fail/runasnonroot%d", v, i), nodeDecision{admitted, "runAsNonRoot is not true, but the image's user is 65535 (the real pause image's): kubelet sends run_as_user 65535 and the process runs as uid 65535, which the node judges; the API server cannot see the image. With a root image restricted.yaml refuses it (runAsRoot; the test's control)", false})
	}
	for _, i := range []int{0, 2, 3} {
		set("restricted", fmt.Sprintf("restricted/%s/fail/seccompprofile_restricted%d", v, i), nodeDecision{admitted, "a container that names no seccomp profile: kubelet's seccompDefault: true sends RuntimeDefault, so it runs as confined as restricted/pass/base; with seccompDefault: false kubelet sends Unconfined and restricted.yaml refuses it (as restricted/fail/seccompprofile_restricted1)", false})
	}
}

// knownGaps are fixtures where patchgate disagrees with Pod Security and should not, keyed
// by "<policy> <fixture id>", with why. The test requires each to still disagree, so that a
// fix makes it fail until the entry is removed.
var knownGaps = map[string]string{}

func init() {
	v := psa.FixtureVersion
	for i := 0; i < 3; i++ {
		knownGaps[fmt.Sprintf("baseline baseline/%s/fail/seccompprofile_baseline%d", v, i)] = "an explicit seccomp Unconfined, visible to the node (kubelet's seccompDefault: true gives a container that names no profile RuntimeDefault), is only warned about: baseline.yaml has seccomp: warn, because under kubelet's default seccompDefault: false a pod that names no profile (baseline/pass/base) is Unconfined too and enforce would refuse it"
	}
}

// psaRun is one fixture's run.
type psaRun struct {
	fixture  psa.Fixture
	kubelet  []string // what kubelet itself would refuse before the runtime is asked
	decision psaDecision
	steps    []string // one line per CRI call that failed
	took     time.Duration
}

func TestPSAParity(t *testing.T) {
	requireTools(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	modDir, err := psa.DownloadModule(ctx)
	if errors.Is(err, psa.ErrModuleUnavailable) {
		err = fmt.Errorf("%w: %w", harness.ErrMissingPrerequisite, err)
	}
	if err != nil {
		harness.SkipOrFail(t, err)
	}
	fixtures, err := psa.LoadFixtures(modDir)
	if err != nil {
		t.Fatal(err)
	}
	// hostUsers: false needs runc >= 1.2 (Debian's 1.1.5 cannot idmap the rootfs).
	runc, err := harness.EnsureRunc(ctx, "", harness.UsernsRuncVersion, testLog{t})
	if err != nil {
		harness.SkipOrFail(t, err)
	}
	tl := *tools
	tl.Runc = runc
	appArmor := hostHasAppArmor()
	t.Logf("psa parity: %d fixtures from %s@%s (%s), runc %s, AppArmor on this host: %t",
		len(fixtures), psa.Module, psa.ModuleVersion, psa.FixtureVersion, harness.UsernsRuncVersion, appArmor)

	// hostUsers: false needs the kernel to let this process create a user namespace. A
	// machine (or VM) can; a chroot cannot (user_namespaces(7): EPERM when the caller's root
	// is not its mount namespace's root), which is how a fresh-machine simulation runs this.
	// There those fixtures cannot run at all, and saying so beats reporting them as the
	// runtime's refusals.
	if err := exec.Command("unshare", "--user", "true").Run(); err != nil {
		n := 0
		for _, f := range fixtures {
			if f.Pod.Spec.HostUsers != nil && !*f.Pod.Spec.HostUsers && outOfScope[f.ID()] == "" {
				outOfScope[f.ID()] = "this machine cannot create user namespaces (`unshare --user true`: " + err.Error() + "), which hostUsers: false needs"
				n++
			}
		}
		t.Logf("psa parity: WARNING: user namespaces cannot be created here (%v): %d hostUsers: false fixtures not run", err, n)
	}
	var byLevel = map[string][]psa.Fixture{}
	for _, f := range fixtures {
		byLevel[f.Level] = append(byLevel[f.Level], f)
	}
	// The fixtures' hostPath volumes are mounted by no container; these derived Pods mount
	// one, plainly and with a subPath, so that the class is judged at all.
	byLevel["baseline"] = append(byLevel["baseline"], derivedFixtures(t, byLevel["baseline"])...)
	var baselineFail []psa.Fixture
	for _, f := range byLevel["baseline"] {
		if f.Expect == "fail" {
			baselineFail = append(baselineFail, f)
		}
	}
	type tally struct {
		agree, decides, outOfScope, gaps, total, derived int
		took                                             time.Duration
	}
	summary := map[string]*tally{}
	var failures []string
	for _, run := range []struct {
		policy   string
		fixtures []psa.Fixture
	}{
		{"baseline", byLevel["baseline"]},
		{"restricted", append(append([]psa.Fixture{}, byLevel["restricted"]...), baselineFail...)},
	} {
		tally := &tally{}
		summary[run.policy] = tally
		t.Run(run.policy, func(t *testing.T) {
			policyBegan := time.Now()
			runs := runPSAFixtures(t, &tl, run.policy, run.fixtures, appArmor)
			for _, r := range runs {
				id := r.fixture.ID()
				key := run.policy + " " + id
				want := admitted
				if r.fixture.Expect == "fail" {
					want = refusedByPG
				}
				tally.total++
				if strings.Contains(r.fixture.Name, "+") {
					tally.derived++
				}
				line := fmt.Sprintf("%s.yaml %s: expected %s, %s", run.policy, id, r.fixture.Expect, r.decision)
				if len(r.kubelet) > 0 {
					line += "; kubelet itself would refuse: " + strings.Join(r.kubelet, "; ")
				}
				if len(r.steps) > 0 {
					line += "\n        " + strings.Join(r.steps, "\n        ")
				}
				nd, decided := nodeDecides[key]
				gap, isGap := knownGaps[key]
				if decided && nd.onlyWithoutAppArmor && appArmor {
					decided = false
				}
				switch {
				case outOfScope[id] != "":
					tally.outOfScope++
					t.Logf("OUT OF SCOPE %s.yaml %s: not run (%s)", run.policy, id, outOfScope[id])
				case decided:
					if r.decision != nd.decision {
						failures = append(failures, fmt.Sprintf("%s: the node decision changed: want %s (%s)", line, nd.decision, nd.reason))
						t.Errorf("NODE DECISION CHANGED %s; want %s (%s)", line, nd.decision, nd.reason)
						continue
					}
					tally.decides++
					t.Logf("NODE DECIDES %s (%s)", line, nd.reason)
				case isGap:
					if r.decision == want {
						failures = append(failures, line+": a known gap now agrees; remove it from knownGaps")
						t.Errorf("KNOWN GAP NOW AGREES %s: remove it from knownGaps (%s)", line, gap)
						continue
					}
					tally.gaps++
					t.Logf("KNOWN GAP %s (%s)", line, gap)
				case r.decision == want:
					tally.agree++
					t.Logf("agree %s", line)
				default:
					failures = append(failures, line)
					t.Errorf("DISAGREE %s", line)
				}
			}
			tally.took = time.Since(policyBegan)
		})
	}
	var parts []string
	for _, pol := range []string{"baseline", "restricted"} {
		s := summary[pol]
		inScope := s.total - s.outOfScope
		parts = append(parts, fmt.Sprintf("%s.yaml %d/%d agree (%d same decision, %d where the node rightly decides otherwise; %d known gaps; %d out of scope; %d of the %d Pods derived; %s)",
			pol, s.agree+s.decides, inScope, s.agree, s.decides, s.gaps, s.outOfScope, s.derived, s.total, s.took.Round(time.Second)))
	}
	t.Logf("psa parity: %s; run time %s", strings.Join(parts, ", "), time.Since(began).Round(time.Second))
	if len(failures) > 0 {
		sort.Strings(failures)
		t.Errorf("psa parity: %d disagreements:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}

// runPSAFixtures starts containerd with patchgate under examples/policies/<policy>.yaml on a
// patched kernel state and runs each fixture's pod, one after another.
func runPSAFixtures(t *testing.T, tl *harness.Tools, policy string, fixtures []psa.Fixture, appArmor bool) []psaRun {
	// kubelet's root directory: the pods' own files (etc-hosts, termination logs) and the
	// Localhost seccomp profiles. The policy is told where it is, as a node running kubelet
	// with --root-dir would be, and where this private containerd keeps the sandbox files
	// (/etc/hostname, /etc/resolv.conf, /dev/shm) it mounts into every container.
	kubeletRoot := t.TempDir()
	if err := os.Chmod(kubeletRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	p := newPG(t, pgOptions{tools: tl, policy: map[string]string{
		"policy.yaml": "examples/policies/" + policy + ".yaml",
		"policy.d/90-psa-kubelet.yaml": fmt.Sprintf(`apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: %s}
spec:
  rules:
    hostPathMounts:
      kubeletDir: %s
      runtimeDirs: [%%CONTAINERD_ROOT%%/io.containerd.grpc.v1.cri/sandboxes, %%CONTAINERD_STATE%%/io.containerd.grpc.v1.cri/sandboxes]
`, policy, kubeletRoot),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	p.waitKernel(true)
	image, err := harness.PauseImage(p.h.Tools.Pause)
	if err != nil {
		t.Fatal(err)
	}
	image.Ref = psaImage
	image.Config.User = psaImageUser
	if err := p.h.ImportImage(ctx, image); err != nil {
		t.Fatal(err)
	}
	// The fixtures' Localhost seccomp profile "testing": containerd's own default profile,
	// as an administrator would install a profile that confines.
	profile, err := json.Marshal(seccomp.DefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}))
	if err != nil {
		t.Fatal(err)
	}
	seccompRoot := filepath.Join(kubeletRoot, "seccomp")
	if err := os.MkdirAll(seccompRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seccompRoot, "testing"), profile, 0o644); err != nil {
		t.Fatal(err)
	}
	k := &psa.Kubelet{
		RootDir:            kubeletRoot,
		SeccompProfileRoot: seccompRoot,
		SeccompDefault:     true,
		AppArmorEnabled:    appArmor,
		UsernsHostID:       65536 * 16,
		HostPathDir:        filepath.Join(kubeletRoot, "hostpath"),
		CgroupParent:       p.h.CgroupParent,
		Image:              psaImage,
		ImageUser:          psaImageUser,
		MaskedPaths:        psa.DefaultMaskedPaths("/"),
	}
	var runs []psaRun
	for i, f := range fixtures {
		if outOfScope[f.ID()] != "" {
			runs = append(runs, psaRun{fixture: f, decision: "not run"})
			continue
		}
		runs = append(runs, runPSAFixture(ctx, t, p, k, policy, i, f))
	}
	if policy == "restricted" {
		// The control for nodeDecides' runAsNonRoot entries: the same Pods with an image whose
		// user is root (the harness's busybox, no User) run as uid 0 and are refused.
		root := *k
		root.Image, root.ImageUser = harness.BusyboxImageRef, ""
		for i, f := range fixtures {
			if f.Level != "restricted" || f.Expect != "fail" || !strings.HasPrefix(f.Name, "runasnonroot") {
				continue
			}
			r := runPSAFixture(ctx, t, p, &root, policy+"-rootimage", i, f)
			line := fmt.Sprintf("control %s.yaml %s with a root image: %s", policy, f.ID(), r.decision)
			if len(r.steps) > 0 {
				line += "\n        " + strings.Join(r.steps, "\n        ")
			}
			if r.decision != refusedByPG {
				t.Errorf("%s; want %s", line, refusedByPG)
				continue
			}
			t.Log(line)
		}
	}
	return runs
}

// runPSAFixture does what kubelet does for one pod: the sandbox, then each init container and
// each container (create, start), then removes the pod. It goes on after a refusal so that
// every refusal is seen.
func runPSAFixture(ctx context.Context, t *testing.T, p *pg, k *psa.Kubelet, policy string, i int, f psa.Fixture) psaRun {
	t.Helper()
	began := time.Now()
	run := psaRun{fixture: f, decision: admitted}
	uid := fmt.Sprintf("psa-%s-%03d", policy, i)
	pod, err := k.Convert(f.Pod, psaNamespace, uid)
	if err != nil {
		t.Fatalf("%s: %v", f.ID(), err)
	}
	run.kubelet = append(run.kubelet, pod.Refusals...)
	for _, file := range pod.HostFiles {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range pod.HostPaths {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range pod.SubPathBinds {
		for _, dir := range []string{b.From, b.To} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := syscall.Mount(b.From, b.To, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("%s: kubelet's subPath bind: %v", f.ID(), err)
		}
		defer func() {
			if err := syscall.Unmount(b.To, syscall.MNT_DETACH); err != nil {
				t.Errorf("%s: unmount %s: %v", f.ID(), b.To, err)
			}
		}()
	}
	refused := func(what string, r harness.Result) {
		msg := r.ErrorMessage()
		if strings.Contains(msg, "patchgate:") {
			run.decision = refusedByPG
			msg = msg[strings.Index(msg, "patchgate:"):]
		} else if run.decision != refusedByPG {
			run.decision = refusedRuntime
		}
		run.steps = append(run.steps, what+": "+msg)
	}
	podCfg := harness.PodConfig{Name: f.Pod.Name, Namespace: psaNamespace, UID: uid, HostNetwork: f.Pod.Spec.HostNetwork, Raw: rawJSON(t, pod.Sandbox)}
	podID, r := p.h.RunPod(ctx, podCfg)
	if r.ExitCode != 0 {
		refused("runp", r)
		run.took = time.Since(began)
		// A sandbox refused by patchgate is torn down by containerd; remove what is left.
		if ids, _ := p.h.Pods(ctx, "--name", f.Pod.Name, "--namespace", psaNamespace); len(ids) > 0 {
			for _, id := range ids {
				p.h.RemovePod(ctx, id)
			}
		}
		return run
	}
	for _, c := range pod.Containers {
		if c.Refusal != "" {
			run.kubelet = append(run.kubelet, c.Refusal)
		}
		kind := "container"
		if c.Init {
			kind = "init container"
		}
		id, r := p.h.CreateContainer(ctx, podID, podCfg, harness.ContainerConfig{Name: c.Name, Image: k.Image, Raw: rawJSON(t, c.Config)})
		if r.ExitCode != 0 {
			refused("create "+kind+" "+c.Name, r)
			continue
		}
		if r := p.h.StartContainer(ctx, id); r.ExitCode != 0 {
			refused("start "+kind+" "+c.Name, r)
		}
	}
	if r := p.h.RemovePod(ctx, podID); r.ExitCode != 0 {
		t.Errorf("%s: rmp: %v", f.ID(), r.Err())
	}
	run.took = time.Since(began)
	return run
}

// derivedFixtures are baseline/fail/hostpathvolumes0 with its hostPath volume mounted by
// container1: read-only at /a ("+mounted"), and a subPath of it ("+subpath"), which kubelet
// bind-mounts into the pod's own directory before it asks the runtime. Pod Security refuses
// both (any hostPath volume).
func derivedFixtures(t *testing.T, fixtures []psa.Fixture) []psa.Fixture {
	t.Helper()
	var out []psa.Fixture
	for _, f := range fixtures {
		if f.Expect != "fail" || f.Name != "hostpathvolumes0" {
			continue
		}
		for _, v := range []struct {
			suffix string
			mount  corev1.VolumeMount
		}{
			{"+mounted", corev1.VolumeMount{Name: "volume-hostpath", MountPath: "/a", ReadOnly: true}},
			{"+subpath", corev1.VolumeMount{Name: "volume-hostpath", MountPath: "/a", SubPath: "sub"}},
		} {
			d := f
			d.Name += v.suffix
			d.Pod = f.Pod.DeepCopy()
			d.Pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{v.mount}
			out = append(out, d)
		}
	}
	if len(out) != 2 {
		t.Fatalf("derived fixtures: %d, want 2", len(out))
	}
	return out
}

// rawJSON turns a CRI message into the map the harness merges over its own config.
func rawJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// hostHasAppArmor is containerd's check (pkg/apparmor hostSupports): securityfs shows
// AppArmor and the module parameter says it is enabled.
func hostHasAppArmor() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 1 && b[0] == 'Y'
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
