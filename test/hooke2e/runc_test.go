//go:build e2e

package hooke2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// allCaps is every capability up to CAP_CHECKPOINT_RESTORE: what a
// privileged container gets.
var allCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// runcCase tweaks the spec that `runc spec` writes.
type runcCase struct {
	name  string
	tweak func(spec map[string]any)
	// want is "" for a container that must run, else text runc's error
	// must contain.
	want []string
	// userns: the case needs a user namespace (see canCreateUserNS).
	userns bool
}

// canCreateUserNS reports whether this process can create a user
// namespace: not in a chroot (user_namespaces(7): EPERM), as the
// fresh-machine simulation runs CI. Cases that need one are then not run,
// and the log says so; on a real machine they run.
func canCreateUserNS(t testing.TB) bool {
	t.Helper()
	if out, err := exec.Command("unshare", "--user", "true").CombinedOutput(); err != nil {
		t.Logf("this machine cannot create user namespaces (`unshare --user true`: %v %s): the cases that need one are not run", err, strings.TrimSpace(string(out)))
		return false
	}
	return true
}

func setUser(uid int) func(map[string]any) {
	return func(s map[string]any) {
		s["process"].(map[string]any)["user"] = map[string]any{"uid": uid, "gid": uid}
	}
}

func addCaps(caps ...string) func(map[string]any) {
	return func(s map[string]any) {
		c := s["process"].(map[string]any)["capabilities"].(map[string]any)
		for _, set := range []string{"bounding", "effective", "permitted"} {
			list, _ := c[set].([]any)
			for _, cp := range caps {
				list = append(list, cp)
			}
			c[set] = list
		}
	}
}

func privileged(s map[string]any) {
	setUser(1000)(s)
	c := s["process"].(map[string]any)["capabilities"].(map[string]any)
	for _, set := range []string{"bounding", "effective", "permitted"} {
		c[set] = allCaps
	}
	lx := s["linux"].(map[string]any)
	lx["maskedPaths"] = []string{}
	lx["readonlyPaths"] = []string{}
	for _, m := range s["mounts"].([]any) {
		mm := m.(map[string]any)
		if mm["destination"] == "/sys" {
			var opts []any
			for _, o := range mm["options"].([]any) {
				if o != "ro" {
					opts = append(opts, o)
				}
			}
			mm["options"] = append(opts, "rw")
		}
	}
}

// dropReadonly removes one path from linux.readonlyPaths.
func dropReadonly(p string) func(map[string]any) {
	return func(s map[string]any) {
		lx := s["linux"].(map[string]any)
		var keep []any
		for _, x := range lx["readonlyPaths"].([]any) {
			if x != p {
				keep = append(keep, x)
			}
		}
		lx["readonlyPaths"] = keep
	}
}

// mountCases are the mount and procMount classes of issue 10, each refused
// and each with a control that runs, on the host paths of dir: shared (an
// allowed directory) holding data/ and a symlink etc-link -> /etc, and ro
// (allowed read-only only).
func mountCases(e *env, dir string) []runcCase {
	shared, ro := filepath.Join(dir, "shared"), filepath.Join(dir, "ro")
	for _, d := range []string{filepath.Join(shared, "data"), ro} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc", filepath.Join(shared, "etc-link")); err != nil {
		e.t.Fatal(err)
	}
	// /run and /etc are allowed too, to show a protected path under an
	// allowed one is still refused: /run/systemd where systemd runs, else
	// /etc/containers (podman's package installs it; patchgate's own
	// /run/patchgate does not exist here). runc must find the source, or it
	// fails the mount before the hook runs.
	protected := ""
	for _, p := range []string{"/run/systemd", "/etc/containers"} {
		if _, err := os.Stat(p); err == nil {
			protected = p
			break
		}
	}
	if protected == "" {
		e.t.Fatal("neither /run/systemd nor /etc/containers exists: install podman (scripts/install-deps.sh)")
	}
	e.setAllowed("{path: "+shared+"}", "{path: "+ro+", readOnly: true}", "{path: /run}", "{path: /etc}")
	u := setUser(1000)
	return []runcCase{
		// The service's own directory (decision and audit sockets) is
		// no allowed host path.
		{name: "bind-service-dir", tweak: tweaks(u, addMount("bind", filepath.Dir(e.socket), "/svc", "rbind", "rw")), want: []string{"[hostPathMounts]", "/svc (from " + filepath.Dir(e.socket) + ")"}},
		{name: "bind-protected-under-allowed", tweak: tweaks(u, addMount("bind", protected, "/sd", "rbind", "rro")), want: []string{"[hostPathMounts]", "(from " + protected + ", protected)"}},
		{name: "symlink-to-etc", tweak: tweaks(u, addMount("bind", filepath.Join(shared, "etc-link"), "/x", "rbind", "rw")), want: []string{"[hostPathMounts]", "resolves to /etc"}},
		{name: "bind-allowed", tweak: tweaks(u, addMount("bind", filepath.Join(shared, "data"), "/x", "rbind", "rw"))},
		{name: "rbind-ro", tweak: tweaks(u, addMount("bind", ro, "/r", "rbind", "ro")), want: []string{"[hostPathMounts]", "use rro"}},
		{name: "rbind-rro", tweak: tweaks(u, addMount("bind", ro, "/r", "rbind", "rro"))},
		{name: "second-proc", tweak: tweaks(u, addMount("proc", "proc", "/hostproc", "nosuid", "noexec", "nodev")), want: []string{"[procMount]", "/hostproc"}},
		{name: "proc-sys-writable", tweak: tweaks(u, dropReadonly("/proc/sys")), want: []string{"[procMount]", "/proc/sys not in linux.readonlyPaths"}},
	}
}

// runcBundle writes a bundle whose createRuntime hook is `patchgate hook`.
func (e *env) runcBundle(t testing.TB, rootfsDir string, tweak func(map[string]any)) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := run(context.Background(), "runc", "spec", "--bundle", bundle); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	delete(proc, "rlimits") // the sandbox lacks CAP_SYS_RESOURCE (E2E-FACTS)
	spec["root"] = map[string]any{"path": rootfsDir, "readonly": true}
	bin := patchgateBin
	if e.useHookBin {
		bin = hookBin
	}
	spec["hooks"] = map[string]any{"createRuntime": []any{map[string]any{
		"path": bin,
		"args": append([]string{"patchgate", "hook"}, e.hookArgs()...),
	}}}
	if tweak != nil {
		tweak(spec)
	}
	out, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// runcRun runs the bundle to completion and returns runc's output.
func (e *env) runcRun(t testing.TB, bundle, id string) (string, error) {
	t.Helper()
	root := filepath.Join(e.dir, "runc-root")
	out, err := run(context.Background(), "runc", "--root", root, "run", "--bundle", bundle, id)
	// A refused container may be left in "stopped" state; remove it.
	_, _ = run(context.Background(), "runc", "--root", root, "delete", "--force", id)
	return out, err
}

func TestRunc(t *testing.T) {
	needTools(t, "runc")
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			// Before the service starts: the cases write the policy's
			// allowed host paths.
			mounts := mountCases(e, t.TempDir())
			if mode == "service-up" {
				e.startService()
				// The small binary, with the same hooks.d-style argv
				// ("patchgate", "hook", flags...).
				e.useHookBin = true
			}
			rfs := rootfs(t)
			cases := []runcCase{
				{name: "compliant", tweak: setUser(1000)},
				{name: "privileged", tweak: privileged, want: []string{"[privileged]"}},
				{name: "cap-sys-admin", tweak: func(s map[string]any) { setUser(1000)(s); addCaps("CAP_SYS_ADMIN")(s) }, want: []string{"[capabilities]", "CAP_SYS_ADMIN"}},
				{name: "root", tweak: setUser(0), want: []string{"[runAsRoot]", "uid 0"}},
			}
			cases = append(cases, mounts...)
			audited := map[string]string{}
			for i, tc := range cases {
				id := fmt.Sprintf("pg-%s-%d-%d", tc.name, i, time.Now().UnixNano())
				out, err := e.runcRun(t, e.runcBundle(t, rfs, tc.tweak), id)
				checkRefusal(t, tc.name, out, err, tc.want)
				if tc.want != nil {
					audited[id] = tc.name
				}
			}

			// Kernel-aware: the required live patch is still in transition,
			// so even the compliant container is refused.
			e.setKernel(false)
			if mode == "service-up" {
				e.waitKernelState(false)
			}
			id := fmt.Sprintf("pg-kernel-behind-%d", time.Now().UnixNano())
			out, err := e.runcRun(t, e.runcBundle(t, rfs, setUser(1000)), id)
			checkRefusal(t, "kernel behind", out, err, []string{"[kernelPatches]", "kpatch_cve_2024_1086"})
			audited[id] = "kernel behind"
			e.setKernel(true)
			if mode == "service-up" {
				e.waitKernelState(true)
			}
			id = fmt.Sprintf("pg-kernel-ok-%d", time.Now().UnixNano())
			out, err = e.runcRun(t, e.runcBundle(t, rfs, setUser(1000)), id)
			checkRefusal(t, "kernel patched", out, err, nil)

			e.finish(mode, len(audited))
			e.expectAudited(audited)
		})
	}
}

// checkRefusal checks that a container ran (want nil) or was refused by
// the hook with a line naming want, and logs which (make hooke2e runs -v,
// so `make test` shows every refusal and its reason).
func checkRefusal(t *testing.T, name, out string, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s: refused but should run: %v\n%s", name, err, out)
			return
		}
		t.Logf("%s: ran", name)
		return
	}
	if err == nil {
		t.Errorf("%s: ran but should be refused:\n%s", name, out)
		return
	}
	// runc logs the hook's stderr inside a quoted logrus field.
	plain := strings.ReplaceAll(out, `\"`, `"`)
	ok := true
	for _, w := range append([]string{"patchgate: blocked", `policy "e2e-hook"`}, want...) {
		if !strings.Contains(plain, w) {
			t.Errorf("%s: runtime error lacks %q:\n%s", name, w, out)
			ok = false
		}
	}
	if ok {
		t.Logf("%s: refused: %s", name, hookLine(plain))
	}
}

// hookLine is the hook's line inside a runtime's error output.
func hookLine(s string) string {
	i := strings.Index(s, "patchgate: blocked")
	if i < 0 {
		return s
	}
	line := s[i:]
	for _, end := range []string{"\n", `\n`} { // a newline, or runc's escaped one
		if j := strings.Index(line, end); j >= 0 {
			line = line[:j]
		}
	}
	if len(line) > 300 {
		line = line[:300] + "..."
	}
	return line
}

// waitKernelState waits until the service's state file shows the fixture's
// live patch in force (patched) or in transition.
func (e *env) waitKernelState(patched bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(e.stateFile)
		if err == nil {
			var st struct {
				Patches []struct {
					Name       string `json:"name"`
					Transition bool   `json:"transition"`
				} `json:"patches"`
			}
			if json.Unmarshal(data, &st) == nil {
				for _, p := range st.Patches {
					if p.Name == "kpatch_cve_2024_1086" && p.Transition == !patched {
						return
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("state file never showed the patch with transition=%v", !patched)
}
