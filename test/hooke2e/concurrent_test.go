//go:build e2e

package hooke2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentHooks runs 20 `patchgate hook` processes at once, each with
// its own bundle (working directory = bundle, state on stdin, as runc does):
// every decision is right and every refusal is audited exactly once.
func TestConcurrentHooks(t *testing.T) {
	needTools(t, "runc")
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			if mode == "service-up" {
				e.startService()
			}
			rfs := rootfs(t)
			const n = 20
			type job struct {
				id, bundle string
				deny       bool
			}
			jobs := make([]job, n)
			for i := range jobs {
				deny := i%2 == 0
				uid := 1000
				if deny {
					uid = 0
				}
				jobs[i] = job{id: fmt.Sprintf("pg-conc-%02d", i), bundle: e.runcBundle(t, rfs, setUser(uid)), deny: deny}
			}
			var wg sync.WaitGroup
			errs := make([]string, n)
			start := make(chan struct{})
			for i := range jobs {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					j := jobs[i]
					st, _ := json.Marshal(map[string]any{
						"ociVersion": "1.0.2-dev", "id": j.id, "status": "creating", "pid": os.Getpid(), "bundle": j.bundle,
					})
					cmd := exec.Command(patchgateBin, append([]string{"hook"}, e.hookArgs()...)...)
					cmd.Dir = j.bundle
					cmd.Stdin = bytes.NewReader(st)
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					<-start
					err := cmd.Run()
					code := 0
					if ee, ok := err.(*exec.ExitError); ok {
						code = ee.ExitCode()
					} else if err != nil {
						errs[i] = err.Error()
						return
					}
					switch {
					case j.deny && (code != 1 || !strings.Contains(stderr.String(), "[runAsRoot]")):
						errs[i] = fmt.Sprintf("%s: exit %d, stderr %q; want a runAsRoot refusal", j.id, code, stderr.String())
					case !j.deny && code != 0:
						errs[i] = fmt.Sprintf("%s: exit %d, stderr %q; want admitted", j.id, code, stderr.String())
					}
				}(i)
			}
			close(start)
			wg.Wait()
			for _, e := range errs {
				if e != "" {
					t.Error(e)
				}
			}
			want := map[string]string{}
			for _, j := range jobs {
				if j.deny {
					want[j.id] = "root"
				}
			}
			e.finish(mode, len(want))
			e.expectAudited(want)
		})
	}
}

// TestConcurrentRunc starts 20 containers with runc at once, half of them
// root, with the service up: each root one is refused with the hook's
// reason, each other one runs, and each refusal has one audit record.
func TestConcurrentRunc(t *testing.T) {
	needTools(t, "runc")
	e := newEnv(t)
	e.startService()
	rfs := rootfs(t)
	const n = 20
	type job struct {
		id, bundle string
		deny       bool
	}
	jobs := make([]job, n)
	for i := range jobs {
		uid := 1000
		if i%2 == 0 {
			uid = 0
		}
		jobs[i] = job{id: fmt.Sprintf("pg-crun-%02d", i), bundle: e.runcBundle(t, rfs, setUser(uid)), deny: uid == 0}
	}
	var wg sync.WaitGroup
	outs := make([]string, n)
	errs := make([]error, n)
	for i := range jobs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], errs[i] = e.runcRun(t, jobs[i].bundle, jobs[i].id)
		}(i)
	}
	wg.Wait()
	want := map[string]string{}
	for i, j := range jobs {
		if j.deny {
			checkRefusal(t, j.id, outs[i], errs[i], []string{"[runAsRoot]"})
			want[j.id] = "root"
		} else {
			checkRefusal(t, j.id, outs[i], errs[i], nil)
		}
	}
	e.finish("service-up", len(want))
	e.expectAudited(want)
}
