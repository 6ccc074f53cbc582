//go:build e2e

package hooke2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// BenchmarkHookProcess measures the whole hook process as a runtime sees
// it: fork/exec, reading the state and config.json, deciding (through the
// service, or locally from the policy file and kernel state file), exit.
// Run it with -benchtime=200x to get the median and p95 over 200 runs
// (scripts/hook-bench.sh). The binaries are the full patchgate and the
// small patchgate-hook; the container is compliant (admit, no audit
// record) or root (block, one audit record).
func BenchmarkHookProcess(b *testing.B) {
	// The floor on this machine: fork/exec/exit of /bin/true, fed the same
	// stdin, so the hook's figures can be read against it.
	b.Run("baseline/bin-true", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		cpu := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			cmd := exec.Command("/bin/true")
			cmd.Stdin = bytes.NewReader([]byte(`{}`))
			start := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		}
		b.ReportMetric(ms(percentile(ds, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(ds, 95)), "p95-ms")
		b.ReportMetric(ms(percentile(cpu, 50)), "cpu-p50-ms")
	})
	// The floor for any Go program: an empty static main, built as the
	// thin hook is (CGO_ENABLED=0, -trimpath, -ldflags=-s -w).
	b.Run("baseline/empty-go", func(b *testing.B) {
		bin := emptyGoBin(b)
		ds := make([]time.Duration, 0, b.N)
		cpu := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(bin)
			cmd.Stdin = bytes.NewReader([]byte(`{}`))
			start := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		}
		b.ReportMetric(ms(percentile(ds, 50)), "p50-ms")
		b.ReportMetric(ms(percentile(ds, 95)), "p95-ms")
		b.ReportMetric(ms(percentile(cpu, 50)), "cpu-p50-ms")
	})
	for _, mode := range []string{"service-up", "service-down"} {
		for _, bin := range []struct{ name, path string }{{"patchgate", patchgateBin}, {"patchgate-hook", hookBin}} {
			for _, verdict := range []string{"admit", "block"} {
				b.Run(mode+"/"+bin.name+"/"+verdict, func(b *testing.B) {
					benchHook(b, mode, bin.path, verdict)
				})
			}
		}
	}
}

func benchHook(b *testing.B, mode, bin, verdict string) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	e := newEnv(b)
	if mode == "service-up" {
		e.startService()
		defer e.stopService()
	}
	uid := 1000
	if verdict == "block" {
		uid = 0
	}
	bundle := e.runcBundle(b, rootfs(b), setUser(uid))
	st, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2-dev", "id": "pg-bench", "status": "creating", "pid": os.Getpid(), "bundle": bundle})
	args := append([]string{"hook"}, e.hookArgs()...)
	want := 0
	if verdict == "block" {
		want = 1
	}
	// One run outside the timing, so the state file and page cache are warm.
	runOnce(b, bin, args, bundle, st, want)
	ds := make([]time.Duration, 0, b.N)
	cpu := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		used := runOnce(b, bin, args, bundle, st, want)
		ds = append(ds, time.Since(start))
		cpu = append(cpu, used)
	}
	b.StopTimer()
	// Wall time is what the runtime waits; the hook process's own CPU time
	// (user+system) says how much of it is the hook rather than a busy
	// machine.
	b.ReportMetric(ms(percentile(ds, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(ds, 95)), "p95-ms")
	b.ReportMetric(ms(percentile(cpu, 50)), "cpu-p50-ms")
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*p)/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runOnce runs the hook once and returns its CPU time (user+system).
func runOnce(b *testing.B, bin string, args []string, bundle string, st []byte, want int) time.Duration {
	cmd := exec.Command(bin, args...)
	cmd.Dir = bundle
	cmd.Stdin = bytes.NewReader(st)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.Fatal(err)
	}
	if code != want {
		b.Fatalf("exit %d, want %d: %s", code, want, stderr.String())
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// emptyGoBin builds `package main; func main() {}` as a static binary.
func emptyGoBin(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module emptyhook\n\ngo 1.22\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "empty")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the empty Go hook: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkHookRatio is the fair comparison on a noisy machine: each
// iteration runs every candidate once, in turn, fed the same state for the
// same compliant container (admit, no audit record), so that load drifts
// hit all of them alike. It reports each candidate's median whole-process
// time and its ratio to the /bin/true hook (scripts/hook-bench.sh, make
// bench). The candidates: /bin/true, an empty static Go program, the thin
// hook patchgate-hook with the service up and down (then it runs
// `patchgate hook`), and `patchgate hook` itself with the service up. Set
// PATCHGATE_BENCH_HOOK_BEFORE to an older hook binary to add it, run as
// `patchgate hook` was, with the service up.
func BenchmarkHookRatio(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	up, down := newEnv(b), newEnv(b)
	up.startService()
	defer up.stopService()
	rfs := rootfs(b)
	type cand struct {
		name, bin string
		args      []string
		bundle    string
		st        []byte
	}
	mk := func(e *env, name, bin string, args []string) cand {
		bundle := e.runcBundle(b, rfs, setUser(1000))
		st, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2-dev", "id": "pg-bench", "status": "creating", "pid": os.Getpid(), "bundle": bundle})
		return cand{name, bin, args, bundle, st}
	}
	hookArgs := func(e *env) []string { return append([]string{"hook"}, e.hookArgs()...) }
	cands := []cand{
		{name: "bin-true", bin: "/bin/true", st: []byte(`{}`)},
		{name: "empty-go", bin: emptyGoBin(b), st: []byte(`{}`)},
		mk(up, "thin/service-up", hookBin, hookArgs(up)),
		mk(down, "thin/service-down", hookBin, hookArgs(down)),
		mk(up, "patchgate-hook-full/service-up", patchgateBin, hookArgs(up)),
	}
	if before := os.Getenv("PATCHGATE_BENCH_HOOK_BEFORE"); before != "" {
		cands = append(cands, mk(up, "before/service-up", before, hookArgs(up)))
	}
	ds := make([][]time.Duration, len(cands))
	cpu := make([][]time.Duration, len(cands))
	for _, c := range cands { // warm the page cache and the state file
		runOnce(b, c.bin, c.args, c.bundle, c.st, 0)
	}
	// b.Loop: the setup above runs once.
	for i := 0; b.Loop(); i++ {
		for k := range cands {
			j := (i + k) % len(cands) // rotate the order too
			c := cands[j]
			start := time.Now()
			used := runOnce(b, c.bin, c.args, c.bundle, c.st, 0)
			ds[j] = append(ds[j], time.Since(start))
			cpu[j] = append(cpu[j], used)
		}
	}
	floor := ms(percentile(ds[0], 50))
	for j, c := range cands {
		p50 := ms(percentile(ds[j], 50))
		b.Logf("%-32s p50 %7.2f ms  p95 %7.2f ms  cpu-p50 %6.2f ms  %5.2fx /bin/true", c.name, p50, ms(percentile(ds[j], 95)), ms(percentile(cpu[j], 50)), p50/floor)
		b.ReportMetric(p50, c.name+"-p50-ms")
	}
}
