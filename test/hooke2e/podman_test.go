//go:build e2e

package hooke2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// podman runs `podman run` against a private store (vfs, --rootfs) with the
// generated hooks.d entry.
func (e *env) podman(t *testing.T, hooksDir, rootfsDir, name string, flags ...string) (string, error) {
	t.Helper()
	args := []string{
		"--root", filepath.Join(e.dir, "podman", "root"),
		"--runroot", filepath.Join(e.dir, "podman", "runroot"),
		"--storage-driver", "vfs", "--hooks-dir", hooksDir,
		"run", "--rm", "--name", name, "--network", "none",
		// The sandbox lacks CAP_SYS_RESOURCE (E2E-FACTS).
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000",
	}
	args = append(args, flags...)
	args = append(args, "--rootfs", rootfsDir, "/bin/true")
	return run(context.Background(), "podman", args...)
}

func TestPodman(t *testing.T) {
	needTools(t, "podman", "runc")
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			if mode == "service-up" {
				e.startService()
			}
			hooks := e.hooksDir()
			rfs := rootfs(t)
			n := 0
			audited := 0
			for _, tc := range []struct {
				name  string
				flags []string
				want  []string
			}{
				{"compliant", []string{"--user", "1000", "--cap-drop", "ALL"}, nil},
				{"privileged", []string{"--user", "1000", "--privileged"}, []string{"[privileged]"}},
				{"cap-sys-admin", []string{"--user", "1000", "--cap-add", "SYS_ADMIN"}, []string{"[capabilities]", "CAP_SYS_ADMIN"}},
				{"pid-host", []string{"--user", "1000", "--cap-drop", "ALL", "--pid", "host"}, []string{"[hostNamespaces]", "pid"}},
				{"root", []string{"--cap-drop", "ALL"}, []string{"[runAsRoot]"}},
			} {
				n++
				name := fmt.Sprintf("pg-%s-%d", tc.name, time.Now().UnixNano())
				out, err := e.podman(t, hooks, rfs, name, tc.flags...)
				checkRefusal(t, tc.name, out, err, tc.want)
				if tc.want != nil {
					audited++
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
			audited++
			e.setKernel(true)
			if mode == "service-up" {
				e.waitKernelState(true)
			}
			out, err = e.podman(t, hooks, rfs, fmt.Sprintf("pg-kok-%d", time.Now().UnixNano()), "--user", "1000", "--cap-drop", "ALL")
			checkRefusal(t, "kernel patched", out, err, nil)

			if mode == "service-up" {
				e.stopService()
			} else {
				e.drainSpool()
			}
			// podman's container ids are not known here; count records.
			recs := e.auditRecords()
			if len(recs) != audited {
				t.Errorf("%d audit records, want %d (one per refusal)", len(recs), audited)
			}
			ids := map[string]bool{}
			for _, r := range recs {
				if ids[r.Container.ID] || r.Action != "blocked" || r.Source != "hook" {
					t.Errorf("bad or duplicate record: %+v", r)
				}
				ids[r.Container.ID] = true
				if r.UUID == "" || len(r.Violations) == 0 {
					t.Errorf("record without violations: %+v", r)
				}
			}
		})
	}
}
