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
