//go:build e2e

package hooke2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podman runs `podman run` against a private store (vfs, --rootfs) with the
// generated hooks.d entry.
func (e *env) podman(t testing.TB, hooksDir, rootfsDir, name string, flags ...string) (string, error) {
	t.Helper()
	e.podmanStore(t)
	args := []string{
		"--root", filepath.Join(e.podmanDir, "root"),
		"--runroot", filepath.Join(e.podmanDir, "run"),
		"--storage-driver", "vfs", "--hooks-dir", hooksDir,
		"run", "--rm", "--name", name, "--network", "none",
		// The sandbox lacks CAP_SYS_RESOURCE (E2E-FACTS).
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000",
	}
	args = append(args, flags...)
	args = append(args, "--rootfs", rootfsDir, "/bin/true")
	return run(context.Background(), "podman", args...)
}

// podmanStore makes the private store once and lists it in the policy's
// hostPathMounts.runtimeDirs (call it before the service starts, so the
// service's first policy has it).
func (e *env) podmanStore(t testing.TB) {
	t.Helper()
	if e.podmanDir == "" {
		// podman refuses a runroot longer than 50 characters.
		d, err := os.MkdirTemp("/tmp", "pgp")
		if err != nil {
			t.Fatal(err)
		}
		e.podmanDir = d
		// podman's own /etc/hosts, /dev/shm, /run/.containerenv come
		// from its private --root and --runroot.
		e.setRuntimeDirs(d)
		e.t.Cleanup(func() {
			// `podman run --rm` leaves a `podman container cleanup`
			// process behind that may still touch the store: wait for
			// every process naming the directory to go, then remove it.
			waitNoProcessMentions(d, 15*time.Second)
			if err := os.RemoveAll(d); err != nil {
				e.t.Errorf("removing the podman store: %v", err)
			}
		})
	}
}

func TestPodman(t *testing.T) {
	needTools(t, "podman", "runc")
	cleanupPodmanCgroups(t)
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			e.podmanStore(t)
			if mode == "service-up" {
				e.startService()
			}
			hooks := e.hooksDir()
			rfs := rootfs(t)
			blocked, flagged := 0, 0
			for _, tc := range []struct {
				name  string
				flags []string
				want  []string
			}{
				{"compliant", []string{"--user", "1000", "--cap-drop", "ALL"}, nil},
				// This sandbox lacks CAP_SYS_RESOURCE, so --privileged gets
				// every capability but that one; the privileged rule
				// tolerates that (policy 515e720).
				{"privileged", []string{"--user", "1000", "--privileged"}, []string{"[privileged]", "podman: run without --privileged",
					"privileged also fails rules ", "capabilities", "procMount", "hostDevices"}},
				{"cap-sys-admin", []string{"--user", "1000", "--cap-add", "SYS_ADMIN"}, []string{"[capabilities]", "CAP_SYS_ADMIN"}},
				{"pid-host", []string{"--user", "1000", "--cap-drop", "ALL", "--pid", "host"}, []string{"[hostNamespaces]", "pid", "podman: run without --pid=host"}},
				{"root", []string{"--cap-drop", "ALL"}, []string{"[runAsRoot]"}},
			} {
				name := fmt.Sprintf("pg-%s-%d", tc.name, time.Now().UnixNano())
				out, err := e.podman(t, hooks, rfs, name, tc.flags...)
				checkRefusal(t, tc.name, out, err, tc.want)
				if tc.want != nil {
					blocked++
				} else {
					// podman does not set noNewPrivileges: admitted, and
					// flagged by privilegeEscalation (action warn).
					flagged++
				}
			}

			// Kernel-aware, on the fixture host root: refused while the
			// required patch is in transition, admitted once it is in force.
			e.setKernel(false)
			if mode == "service-up" {
				e.waitKernelState(false)
			}
			out, err := e.podman(t, hooks, rfs, fmt.Sprintf("pg-kbehind-%d", time.Now().UnixNano()), "--user", "1000", "--cap-drop", "ALL")
			checkRefusal(t, "kernel behind", out, err, []string{"[kernelPatches]", "kpatch_cve_2024_1086"})
			blocked++
			e.setKernel(true)
			if mode == "service-up" {
				e.waitKernelState(true)
			}
			out, err = e.podman(t, hooks, rfs, fmt.Sprintf("pg-kok-%d", time.Now().UnixNano()), "--user", "1000", "--cap-drop", "ALL")
			checkRefusal(t, "kernel patched", out, err, nil)
			flagged++

			e.finish(mode, blocked+flagged)
			// podman's container ids are not known here: one record per
			// container, blocked ones and flagged ones counted apart.
			recs := e.auditRecords()
			ids := map[string]bool{}
			actions := map[string]int{}
			for _, r := range recs {
				if ids[r.Container.ID] || r.Source != "hook" || r.UUID == "" || len(r.Violations) == 0 {
					t.Errorf("bad or duplicate record: %+v", r)
				}
				ids[r.Container.ID] = true
				actions[r.Action]++
			}
			if actions["blocked"] != blocked || actions["flagged"] != flagged || len(recs) != blocked+flagged {
				t.Errorf("audit records by action %v, want %d blocked and %d flagged", actions, blocked, flagged)
			} else {
				t.Logf("audit log %s: %d records, one per container: %d blocked, %d flagged", e.auditLog, len(recs), blocked, flagged)
			}
		})
	}
}

// waitNoProcessMentions waits until no process's command line contains s.
func waitNoProcessMentions(s string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		found := false
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			cmd, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			if err == nil && strings.Contains(string(cmd), s) {
				found = true
				break
			}
		}
		if !found {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanupPodmanCgroups removes, after the test, the empty cgroups podman
// (cgroupfs manager) leaves behind (libpod_parent/conmon in every
// hierarchy), unless they were there before. rmdir never removes a cgroup
// that still has processes.
func cleanupPodmanCgroups(t *testing.T) {
	existed := map[string]bool{}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
	for _, d := range dirs {
		existed[d] = true
	}
	if unified, err := os.Stat("/sys/fs/cgroup/libpod_parent"); err == nil && unified.IsDir() {
		existed["/sys/fs/cgroup/libpod_parent"] = true
	}
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/libpod_parent")
		dirs = append(dirs, "/sys/fs/cgroup/libpod_parent")
		for _, d := range dirs {
			if existed[d] {
				continue
			}
			_ = os.Remove(filepath.Join(d, "conmon"))
			_ = os.Remove(d)
		}
	})
}
