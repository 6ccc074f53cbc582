//go:build e2e

package hooke2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// The user-namespace and seccomp classes of issue 10, run by the real runc
// with `patchgate hook` as its createRuntime hook: each bypass the review
// found is refused, and a control of each class runs.

// userNS puts the container in its own user namespace with these uid and gid
// mappings (each a containerID, hostID, size triple) and process uid/gid.
func userNS(uid int, uids, gids [][3]int) func(map[string]any) {
	toList := func(ms [][3]int) []any {
		var out []any
		for _, m := range ms {
			out = append(out, map[string]any{"containerID": m[0], "hostID": m[1], "size": m[2]})
		}
		return out
	}
	return func(s map[string]any) {
		s["process"].(map[string]any)["user"] = map[string]any{"uid": uid, "gid": uid}
		lx := s["linux"].(map[string]any)
		lx["namespaces"] = append(lx["namespaces"].([]any), map[string]any{"type": "user"})
		lx["uidMappings"] = toList(uids)
		lx["gidMappings"] = toList(gids)
	}
}

// seccompProfile sets linux.seccomp.
func seccompProfile(defaultAction string, rules ...map[string]any) func(map[string]any) {
	return func(s map[string]any) {
		var list []any
		for _, r := range rules {
			list = append(list, r)
		}
		s["linux"].(map[string]any)["seccomp"] = map[string]any{"defaultAction": defaultAction, "architectures": []string{"SCMP_ARCH_X86_64"}, "syscalls": list}
	}
}

// mustBlockCalls are the real system calls of the default
// rules.seccomp.mustBlock (without the pseudo call clone(CLONE_NEWUSER)).
func mustBlockCalls() []string {
	return without(policy.Default().Spec.Rules.Seccomp.MustBlock, "clone(CLONE_NEWUSER)")
}

// blockCloneNewUser fails clone when its flags hold CLONE_NEWUSER.
var blockCloneNewUser = map[string]any{"names": []string{"clone"}, "action": "SCMP_ACT_ERRNO",
	"args": []any{map[string]any{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000, "op": "SCMP_CMP_MASKED_EQ"}}}

// blockMustBlock is a filter that allows by default and makes every call of
// the default rules.seccomp.mustBlock fail with EPERM, and clone with
// CLONE_NEWUSER: it passes the rule, and busybox runs under it.
func blockMustBlock() func(map[string]any) {
	return seccompProfile("SCMP_ACT_ALLOW", map[string]any{"names": mustBlockCalls(), "action": "SCMP_ACT_ERRNO"}, blockCloneNewUser)
}

// openForUserNS makes the rootfs's parent directories traversable by the
// host uids a user namespace maps to (t.TempDir makes them 0700).
func openForUserNS(t *testing.T, rfs string) {
	t.Helper()
	for d := filepath.Dir(rfs); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRuncUserNamespaceAndSeccomp(t *testing.T) {
	needTools(t, "runc", "unshare")
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			// The e2e policy leaves seccomp off; this test's drop-in
			// enforces it with the default mustBlock.
			dropin := filepath.Join(e.policyDir, "policy.d")
			if err := os.MkdirAll(dropin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dropin, "50-seccomp.yaml"), []byte("apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: e2e-hook}\nspec:\n  rules:\n    seccomp: {action: enforce}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if mode == "service-up" {
				e.startService()
				e.useHookBin = true
			}
			rfs := rootfs(t)
			openForUserNS(t, rfs)
			good := [][3]int{{0, 100000, 65536}}
			sc := blockMustBlock()
			cases := []runcCase{
				// Controls.
				{name: "compliant with a blocking seccomp filter", tweak: tweaks(setUser(1000), sc)},
				{name: "root in a user namespace on host 100000+", userns: true, tweak: tweaks(userNS(0, good, good), sc)},
				{name: "seccomp: allow by default, kill every required call", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_ALLOW",
					map[string]any{"names": mustBlockCalls(), "action": "SCMP_ACT_KILL_PROCESS"}, blockCloneNewUser))},

				// User namespaces.
				{name: "uid 1 mapped to host 0", userns: true, tweak: tweaks(userNS(1, [][3]int{{0, 100000, 1}, {1, 0, 1}, {2, 100002, 65534}}, good), sc),
					want: []string{"[runAsRoot]", "must not run as uid 1 mapped to host uid 0"}},
				{name: "uid 1000, container uid 0 is host root", userns: true, tweak: tweaks(userNS(1000, [][3]int{{0, 0, 1}, {1, 100001, 65535}}, good), sc),
					want: []string{"[runAsRoot]", "must not map container uid 0 to host uid 0 (linux.uidMappings)"}},
				{name: "gid 5 mapped to host gid 0", userns: true, tweak: tweaks(userNS(1000, good, [][3]int{{0, 100000, 5}, {5, 0, 1}, {6, 100006, 65530}}), sc),
					want: []string{"[runAsRoot]", "must not map container gid 5 to host gid 0 (linux.gidMappings)"}},

				// A user namespace that maps 0 to host root (unshare
				// --map-root-user as root), joined by path with made-up
				// mappings: runc writes none into it, so uid 0 is host root.
				{name: "a root-mapped user namespace by path, uid 0 \"mapped\" to 100000", userns: true, tweak: tweaks(userNS(0, good, good), sc, func(s map[string]any) {
					lx := s["linux"].(map[string]any)
					nss := lx["namespaces"].([]any)
					nss[len(nss)-1] = map[string]any{"type": "user", "path": rootMappedUserNS(t)}
					// That namespace maps only id 0: no devpts gid=5.
					for _, m := range s["mounts"].([]any) {
						mm := m.(map[string]any)
						if mm["type"] == "devpts" {
							var opts []any
							for _, o := range mm["options"].([]any) {
								if o != "gid=5" {
									opts = append(opts, o)
								}
							}
							mm["options"] = opts
						}
					}
				}), want: []string{"[runAsRoot]", "runs as uid 0 in a user namespace whose mappings are not visible"}},

				// seccomp.
				{name: "no seccomp (runc spec's default)", tweak: setUser(1000),
					want: []string{"[seccomp]", "linux.seccomp is absent"}},
				{name: "seccomp allow with one dummy rule", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_ALLOW", map[string]any{"names": []string{"getpid"}, "action": "SCMP_ACT_ERRNO"})),
					want: []string{"[seccomp]", `must block system calls "add_key", "bpf", `, "(linux.seccomp: defaultAction SCMP_ACT_ALLOW)"}},
				{name: "seccomp log", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_LOG")),
					want: []string{"[seccomp]", "defaultAction SCMP_ACT_LOG and no rule blocks a system call"}},
				{name: "seccomp errno re-opening bpf", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_ERRNO", map[string]any{"names": []string{"bpf", "read", "write", "execve"}, "action": "SCMP_ACT_ALLOW"})),
					want: []string{"[seccomp]", `must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`}},
				{name: "seccomp clone with CLONE_NEWUSER let through", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_ALLOW",
					map[string]any{"names": mustBlockCalls(), "action": "SCMP_ACT_ERRNO"})),
					want: []string{"[seccomp]", `must block system call "clone(CLONE_NEWUSER)" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`}},
				{name: "seccomp bpf blocked only for some arguments", tweak: tweaks(setUser(1000), seccompProfile("SCMP_ACT_ALLOW",
					map[string]any{"names": without(mustBlockCalls(), "bpf"), "action": "SCMP_ACT_ERRNO"}, blockCloneNewUser,
					map[string]any{"names": []string{"bpf"}, "action": "SCMP_ACT_ERRNO", "args": []any{map[string]any{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}}})),
					want: []string{"[seccomp]", `must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`}},
			}
			audited := map[string]string{}
			userns := canCreateUserNS(t)
			for i, tc := range cases {
				if tc.userns && !userns {
					continue
				}
				id := fmt.Sprintf("pg-ks-%d-%d", i, time.Now().UnixNano())
				out, err := e.runcRun(t, e.runcBundle(t, rfs, tc.tweak), id)
				checkRefusal(t, tc.name, out, err, tc.want)
				if tc.want != nil {
					audited[id] = tc.name
				}
			}
			e.finish(mode, len(audited))
			e.expectAudited(audited)
		})
	}
}

// rootMappedUserNS starts a process in a new user namespace that maps uid
// and gid 0 to host root, and returns the path of that namespace.
func rootMappedUserNS(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	path := fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", cmd.Process.Pid))
		if f := strings.Fields(string(data)); err == nil && len(f) >= 2 && f[1] == "0" {
			return path
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("unshare --map-root-user: no root mapping")
	return ""
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
