package policy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func addFileSeeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzLoadPolicy: any input either loads into a policy that evaluates and
// survives `policy show` unchanged, or fails with ErrInvalid; never a panic.
func FuzzLoadPolicy(f *testing.F) {
	addFileSeeds(f, "../examples/policies/*.yaml")
	f.Add(defaultYAML)
	f.Add([]byte(header + "spec: {exemptions: [{name: a, namespaces: [x], rules: [runAsRoot]}], kernel: {requiredCVEs: [cve-2024-1]}}\n"))
	f.Add([]byte(header + "spec:\n  rules: &r {runAsRoot: *r}\n"))
	f.Add([]byte("a: [\n"))
	f.Add([]byte(header + "spec:\n  rules:\n    runAsRoot: {}\n   privileged: {}\n"))
	f.Add([]byte(header + "spec:\r\n  kernel:\r\n\taction: warn\r\n"))
	f.Add([]byte(header + "spec: {exemptions: [~]}\n"))
	f.Add([]byte(header + "---\n---\n"))
	f.Add([]byte(header + "metadata: {name: \"a\\Lb\"}\nspec: {kernel: {minimumVersion: !!null 6.1, denyWhenUpdatesPending: !!null true}}\n"))
	f.Add([]byte(header + "spec: {defaultAction: !x enforce, exemptions: [{name: x, containers: [\"\"], rules: ~}]}\n"))
	w := &Workload{Seen: FieldsAll, User: User{UID: 0}, Container: ContainerIdentity{Name: "c", Image: "registry.k8s.io/x"}, Pod: PodIdentity{Namespace: "kube-system"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadBytes("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			var ve *ValidationError
			if errors.As(err, &ve) && len(ve.Errors) == 0 {
				t.Fatal("ValidationError without errors")
			}
			if ve != nil {
				n := len(lineEnds(data))
				for _, e := range ve.Errors {
					if e.Line < 0 || e.Line > n {
						t.Fatalf("%v: the file has %d lines", e, n)
					}
				}
			}
			// A syntax error is at the first line whose prefix of the
			// file fails the same way.
			checkSyntaxLine(t, data)
			return
		}
		d := Evaluate(p, w, nil, testNow)
		if d.Verdict == "" || d.Policy.Digest != p.Digest() {
			t.Fatalf("decision %+v", d)
		}
		out, err := p.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadBytes("show.yaml", out)
		if err != nil {
			t.Fatalf("policy show output does not load: %v\n%s", err, out)
		}
		if back.Digest() != p.Digest() {
			t.Fatalf("digest changed through policy show:\n%s", out)
		}
	})
}

// FuzzEvaluateSpec: a malformed spec (container or sandbox) gives an error; a
// spec that parses is judged without a panic, and never allowed when it
// plainly breaks an enforced rule.
func FuzzEvaluateSpec(f *testing.F) {
	dirs, err := filepath.Glob("testdata/specs/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, d := range dirs {
		c, err := os.ReadFile(filepath.Join(d, "config.json"))
		if err != nil {
			f.Fatal(err)
		}
		sb, err := os.ReadFile(filepath.Join(d, "sandbox.json"))
		if err != nil {
			sb = nil
		}
		f.Add(c, sb)
	}
	f.Add([]byte(`{"ociVersion": "1.2.0", "process": {"user": {"uid": 0}}, "linux": {}}`), []byte(nil))
	f.Add([]byte(`{"process": null, "linux": {"namespaces": [{"type": "user"}], "uidMappings": [{"containerID": 0, "hostID": 0, "size": 4294967295}]}}`), []byte(nil))
	f.Add([]byte(`{"process": {}, "linux": {"resources": {"devices": [{"allow": true}]}, "namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}}`), []byte(`{"linux": {"sysctl": {"kernel.x": "1"}}}`))
	f.Add([]byte(`[]`), []byte(`{}`))
	f.Add([]byte(`{"process": {"user": {"uid": 1}, "noNewPrivileges": true, "apparmorProfile": "p"}, "linux": {"namespaces": [{"type": "user"}, {"type": "pid"}, {"type": "ipc"}, {"type": "network"}, {"type": "uts"}], "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1}, {"containerID": 1, "hostID": 0, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}`), []byte(nil))
	// A spec that passes every other rule of the strict policy, with device
	// rules for the fuzzer to vary.
	f.Add([]byte(`{"process": {"user": {"uid": 1000}, "noNewPrivileges": true, "apparmorProfile": "p"}, "mounts": [{"destination": "/mnt", "type": "ext4", "source": "/dev/sda1"}], "linux": {"maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"], "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"], "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}, "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "network"}, {"type": "uts"}, {"type": "mount"}], "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 11}], "resources": {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}, {"allow": false, "type": "b", "access": "rwm"}, {"allow": true, "type": "c", "major": 136, "access": "rw"}]}}}`), []byte(nil))
	f.Add([]byte(`{"process": {"noNewPrivileges": true, "apparmorProfile": "p", "user": {"uid": 1}}, "mounts": [{"destination": "/x", "type": "rbind", "source": "/var/lib/kubelet/pods/../../../etc"}], "linux": {"seccomp": {}, "maskedPaths": ["/"], "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "network"}, {"type": "uts"}]}}`), []byte(nil))
	f.Add([]byte(`{"process": {"user": {"uid": 1000}, "noNewPrivileges": true, "apparmorProfile": "p"}, "linux": {"maskedPaths": ["/proc/kcore"], "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "network"}, {"type": "uts"}], "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["bpf", "keyctl"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}, {"names": ["unshare"], "action": "SCMP_ACT_ALLOW"}]}}}`), []byte(nil))
	p, err := LoadBytes("strict.yaml", []byte(header+"metadata: {name: strict}\nspec: {defaultAction: enforce}\n"))
	if err != nil {
		f.Fatal(err)
	}
	k := freshKernel()
	f.Fuzz(func(t *testing.T, data, sandboxData []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		var sandbox *specs.Spec
		if len(sandboxData) > 0 {
			if sandbox, err = ParseSpec(sandboxData); err != nil {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
				}
				return
			}
		}
		w, err := FromSpec(spec, sandbox, FromSpecOptions{Source: "fuzz"})
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		d := Evaluate(p, w, k, testNow)
		if d.Verdict != Allow {
			return
		}
		// Allowed: check the plain facts against the raw specs.
		switch {
		case spec.Linux.Seccomp == nil:
			t.Fatal("allowed without seccomp")
		case spec.Process.User.UID == 0 && findNS(spec.Linux.Namespaces, specsNS("user")) == nil:
			t.Fatal("allowed as root")
		case !spec.Process.NoNewPrivileges:
			t.Fatal("allowed without no_new_privs")
		case len(spec.Linux.MaskedPaths) == 0:
			t.Fatal("allowed with no masked paths")
		case strings.TrimSpace(spec.Process.ApparmorProfile) == "" || strings.TrimSpace(spec.Process.ApparmorProfile) == "unconfined":
			t.Fatal("allowed without AppArmor")
		}
		// In a user namespace, no uid or gid mapping reaches host id 0, and
		// the mappings are known.
		if uns := findNS(spec.Linux.Namespaces, specsNS("user")); uns != nil {
			uids, gids := spec.Linux.UIDMappings, spec.Linux.GIDMappings
			if len(uids) == 0 && sandbox != nil {
				uids = sandbox.Linux.UIDMappings
			}
			if len(gids) == 0 && sandbox != nil {
				gids = sandbox.Linux.GIDMappings
			}
			if uns.Path != "" {
				// Joined by path: only a sandbox that created the
				// namespace tells its mappings.
				sns := (*specs.LinuxNamespace)(nil)
				if sandbox != nil {
					sns = findNS(sandbox.Linux.Namespaces, specsNS("user"))
				}
				if sns == nil || sns.Path != "" {
					t.Fatal("allowed joining a user namespace by path whose mappings nobody states")
				}
				uids, gids = sandbox.Linux.UIDMappings, sandbox.Linux.GIDMappings
			}
			if len(uids) == 0 || len(gids) == 0 {
				t.Fatal("allowed in a user namespace whose mappings are unknown")
			}
			for _, m := range append(slices.Clone(uids), gids...) {
				if m.Size > 0 && (m.HostID == 0 || uint64(m.HostID)+uint64(m.Size) > 1<<32) {
					t.Fatalf("allowed with mapping %+v that reaches host id 0", m)
				}
			}
		}
		// Every call of the default mustBlock fails: worked out from the raw
		// filter, not from the summary.
		for _, name := range defaultSeccompMustBlock {
			if name == seccompCloneNewUser {
				// Weaker, independent check: clone is let through only
				// with conditions, and something blocks it.
				if oracleSeccompBlocks(spec.Linux.Seccomp, "clone") {
					continue
				}
				for _, r := range spec.Linux.Seccomp.Syscalls {
					if slices.Contains(r.Names, "clone") && len(r.Args) == 0 && r.Action != specs.ActErrno && r.Action != specs.ActKill &&
						r.Action != specs.ActKillThread && r.Action != specs.ActKillProcess && r.Action != specs.ActTrap {
						t.Fatal("allowed with clone let through for every flag")
					}
				}
				continue
			}
			if !oracleSeccompBlocks(spec.Linux.Seccomp, name) {
				t.Fatalf("allowed with a seccomp filter that lets %q through", name)
			}
		}
		for _, ns := range []string{"pid", "ipc", "network", "uts"} {
			if findNS(spec.Linux.Namespaces, specsNS(ns)) == nil {
				t.Fatalf("allowed in the host %s namespace", ns)
			}
			// A container joining the sandbox's namespace by path shares
			// the host's when the sandbox has none of its own.
			if c := findNS(spec.Linux.Namespaces, specsNS(ns)); sandbox != nil && c.Path != "" && findNS(sandbox.Linux.Namespaces, specsNS(ns)) == nil {
				t.Fatalf("allowed joining a sandbox that uses the host %s namespace", ns)
			}
		}
		if msg := deviceOracle(spec); msg != "" {
			t.Fatal(msg)
		}
		// Mounts: with no host path allowed, a bind may come only from the
		// runtime's directories or the kubelet's pods directory; only
		// filesystems that hold nothing of the host's pass; one proc.
		procs := 0
		for _, m := range spec.Mounts {
			bind := m.Type == "bind" || m.Type == "rbind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
			if bind {
				src := path.Clean(m.Source)
				if !path.IsAbs(src) {
					t.Fatalf("allowed with a relative bind source %q", m.Source)
				}
				src = strings.Replace(src, "/var/run/", "/run/", 1)
				ok := strings.HasPrefix(src, "/var/lib/kubelet/pods/")
				for _, d := range p.Spec.Rules.HostPathMounts.RuntimeDirs {
					ok = ok || strings.HasPrefix(src, d+"/")
				}
				if !ok {
					t.Fatalf("allowed with a bind of host path %q", m.Source)
				}
				continue
			}
			switch m.Type {
			case "tmpfs", "devpts", "mqueue":
			case "proc":
				procs++
			case "sysfs", "cgroup", "cgroup2":
				if !slices.Contains(m.Options, "ro") && !slices.Contains(m.Options, "rro") {
					t.Fatalf("allowed with a writable %s", m.Type)
				}
			case "overlay":
				for _, o := range m.Options {
					if strings.Contains(o, "dir") && strings.Contains(o, "=/") {
						t.Fatalf("allowed with an overlay on host directories: %q", o)
					}
				}
			default:
				t.Fatalf("allowed with a %q mount", m.Type)
			}
		}
		if procs > 1 {
			t.Fatal("allowed with a second proc mount")
		}
		for _, want := range p.Spec.Rules.ProcMount.MaskedPaths {
			found := false
			for _, m := range spec.Linux.MaskedPaths {
				c := path.Clean(m)
				found = found || want == c || strings.HasPrefix(want, c+"/") || c == "/"
			}
			if !found {
				t.Fatalf("allowed with %s not masked", want)
			}
		}
		if sandbox != nil {
			for name := range sandbox.Linux.Sysctl {
				if !p.compiled.sysctlAllowed(name) {
					t.Fatalf("allowed with pod sysctl %q", name)
				}
			}
		}
	})
}

// oracleSeccompBlocks: the call fails for every argument: no rule whose
// action runs it names it, and the default or an argument-free rule fails it.
func oracleSeccompBlocks(sc *specs.LinuxSeccomp, name string) bool {
	fails := func(a specs.LinuxSeccompAction) bool {
		return a == specs.ActErrno || a == specs.ActKill || a == specs.ActKillThread || a == specs.ActKillProcess || a == specs.ActTrap
	}
	blocked := fails(sc.DefaultAction)
	for _, r := range sc.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		if !fails(r.Action) {
			return false
		}
		if len(r.Args) == 0 {
			blocked = true
		}
	}
	return blocked
}

// FuzzParseKernelState: kernel state JSON either parses into a state the
// kernel rules can judge, or fails with ErrInvalidKernelState.
func FuzzParseKernelState(f *testing.F) {
	addFileSeeds(f, "testdata/kernel/*.json")
	f.Add([]byte(`{"kernel": {"release": "x", "observedAt": "2026-11-27T12:00:00Z"}}`))
	f.Add([]byte(`{"release": "x", "observedAt": "2026-11-27T12:00:00Z", "unknown": [{"part": "all"}]}`))
	p := kernelPolicyFuzz(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKernelState(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKernelState) {
				t.Fatalf("error does not wrap ErrInvalidKernelState: %v", err)
			}
			return
		}
		vs, behind := EvaluateKernel(p, k, testNow)
		if behind != (len(vs) > 0) {
			t.Fatalf("behind=%v with violations %+v", behind, vs)
		}
		for _, u := range k.Unknown {
			if u.Part == "all" && len(vs) == 0 {
				t.Fatal("state with every part unknown passed")
			}
		}
	})
}

func kernelPolicyFuzz(f *testing.F) *Policy {
	p, err := LoadBytes("k.yaml", []byte(header+"metadata: {name: k}\nspec: {kernel: {requiredPatches: [livepatch_sample], requiredCVEs: [CVE-2024-1086], minimumVersion: 6.1.0-18-amd64, denyWhenUpdatesPending: true}}\n"))
	if err != nil {
		f.Fatal(err)
	}
	return p
}

func specsNS(s string) specs.LinuxNamespaceType { return specs.LinuxNamespaceType(s) }

// FuzzMergePolicy: a base file and a drop-in merge into a valid policy or fail
// with ErrInvalid naming one of the two files; never a panic.
func FuzzMergePolicy(f *testing.F) {
	base, err := os.ReadFile("../examples/policies/kernel-aware.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(base, []byte(header+"spec: {exemptions: [{name: x, namespaces: [a]}], kernel: {tools: {kpatch: /usr/sbin/kpatch}}}\n"))
	f.Add(base, []byte(header+"spec: {rules: ~, kernel: [a]}\n"))
	f.Add([]byte(header+"spec: {exemptions: [{name: x, namespaces: [a]}]}\n"), []byte(header+"spec: {exemptions: [{name: x, namespaces: [b]}]}\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p, err := load([]source{{name: "a.yaml", data: a}, {name: "b.yaml", data: b}})
		if err != nil {
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error %v", err)
			}
			for _, e := range ve.Errors {
				if e.File != "a.yaml" && e.File != "b.yaml" {
					t.Fatalf("error names no input file: %+v", e)
				}
			}
			return
		}
		out, err := p.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadBytes("show.yaml", out)
		if err != nil || back.Digest() != p.Digest() {
			t.Fatalf("merged policy does not round-trip: %v\n%s", err, out)
		}
	})
}

// deviceOracle states, from the raw spec and independently of the rule, a
// device the strict policy (no allowed devices) must never admit: a device
// node other than the runtime defaults by number, a device cgroup allow rule
// granting read or write beyond them that no later rule takes back (a later
// deny of everything, or of exactly the same type and numbers), or a block
// filesystem or /dev source mounted without bind.
func deviceOracle(spec *specs.Spec) string {
	defaults := map[[3]int64]bool{{'c', 1, 3}: true, {'c', 1, 5}: true, {'c', 1, 7}: true, {'c', 1, 8}: true, {'c', 1, 9}: true, {'c', 5, 0}: true, {'c', 5, 2}: true}
	for _, d := range spec.Linux.Devices {
		if d.Type == "p" {
			continue
		}
		if (d.Type == "c" || d.Type == "u") && (defaults[[3]int64{'c', d.Major, d.Minor}] || (d.Major == 136 && d.Minor >= 0)) {
			continue
		}
		return fmt.Sprintf("allowed with device %+v", d)
	}
	if r := spec.Linux.Resources; r != nil {
		wild := func(p *int64) bool { return p == nil || *p < 0 }
		rw := func(access string) (bits int, valid bool) {
			if strings.Trim(access, "rwm") != "" {
				return 3, false
			}
			if strings.Contains(access, "r") {
				bits |= 1
			}
			if strings.Contains(access, "w") {
				bits |= 2
			}
			return bits, true
		}
		for i, a := range r.Devices {
			need, _ := rw(a.Access)
			if a.Access == "" || (a.Type != "c" && a.Type != "b") {
				need = 3 // runc: any "a" rule allows every device, whatever its access
			}
			if !a.Allow || need == 0 {
				continue
			}
			if a.Type == "c" && !wild(a.Major) && ((!wild(a.Minor) && defaults[[3]int64{'c', *a.Major, *a.Minor}]) || *a.Major == 136) {
				continue
			}
			for _, d := range r.Devices[i+1:] {
				bits, valid := rw(d.Access)
				if d.Allow || !valid {
					continue
				}
				if (d.Type == "" || d.Type == "a") && wild(d.Major) && wild(d.Minor) && bits == 3 {
					need = 0
				}
				// A deny takes back exactly the same numbers; a
				// negative other than -1 in a deny matches nothing.
				same := func(deny, allow *int64) bool {
					dv, av := int64(-1), int64(-1)
					if deny != nil {
						dv = *deny
					}
					if !wild(allow) {
						av = *allow
					}
					return dv == av
				}
				if d.Type == a.Type && (a.Type == "c" || a.Type == "b") && same(d.Major, a.Major) && same(d.Minor, a.Minor) {
					need &^= bits
				}
			}
			if need != 0 {
				return fmt.Sprintf("allowed with device cgroup rule %d %+v", i, a)
			}
		}
	}
	for _, m := range spec.Mounts {
		bind := m.Type == "bind" || m.Type == "rbind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if bind {
			continue
		}
		switch m.Type {
		case "ext2", "ext3", "ext4", "xfs", "btrfs", "squashfs", "erofs", "fuseblk", "vfat", "devtmpfs", "":
			return fmt.Sprintf("allowed with mount %+v", m)
		}
		if strings.HasPrefix(m.Source, "/") && (path.Clean(m.Source) == "/dev" || strings.HasPrefix(path.Clean(m.Source), "/dev/")) {
			return fmt.Sprintf("allowed with mount %+v", m)
		}
	}
	return ""
}
