package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkEvaluate measures the decision path: Evaluate on a Workload and a
// KernelState already built (what the NRI plugin and the hook call per
// container). Goal: under 5 µs and 20 allocations for the typical case.
//
//	go test ./policy -run '^$' -bench BenchmarkEvaluate -benchmem
func BenchmarkEvaluate(b *testing.B) {
	b.Run("typical", func(b *testing.B) {
		// A well-behaved CRI container under the kernel-aware example
		// (required patch, minimum version) on a patched kernel.
		p, err := Load("../examples/policies/kernel-aware.yaml", "")
		if err != nil {
			b.Fatal(err)
		}
		w := fixtureWorkload(b, "hostPathMounts-pass-runtime")
		k := kernelFixtureB(b, "patched")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d := Evaluate(p, w, k, testNow)
			if d.Verdict != Allow {
				b.Fatal(d.Verdict)
			}
		}
	})
	b.Run("worst", func(b *testing.B) {
		// A privileged container with many mounts, devices and sysctls, a
		// kernel that is behind, and 50 exemptions that all have to be
		// matched and miss: every rule fails and formats its detail.
		p, err := worstPolicy()
		if err != nil {
			b.Fatal(err)
		}
		w := fixtureWorkload(b, "privileged-fail")
		w.User.UID = 0
		for i := 0; i < 200; i++ {
			w.Mounts = append(w.Mounts, Mount{Destination: fmt.Sprintf("/m/%d", i), Source: fmt.Sprintf("/srv/vol/%d", i), Type: "bind", Options: []string{"rbind", "rw"}})
		}
		w.Mounts = append(w.Mounts, Mount{Destination: "/host", Source: "/", Type: "bind", Options: []string{"rbind"}})
		for i := 0; i < 100; i++ {
			w.Devices = append(w.Devices, Device{Path: fmt.Sprintf("/dev/loop%d", i), Type: "b", Major: 7, Minor: int64(i)})
		}
		w.DevicesAllowAll = true
		w.HostNamespaces = []string{"ipc", "network", "pid", "uts"}
		w.Sysctls = map[string]string{}
		for i := 0; i < 20; i++ {
			w.Sysctls[fmt.Sprintf("kernel.sem%d", i)] = "1"
		}
		k := kernelFixtureB(b, "behind")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d := Evaluate(p, w, k, testNow)
			if d.Verdict != Deny {
				b.Fatal(d.Verdict)
			}
		}
	})
}

func worstPolicy() (*Policy, error) {
	doc := header + "metadata: {name: worst}\nspec:\n  kernel: {requiredPatches: [livepatch_sample, a, b, c], requiredCVEs: [CVE-2024-1086, CVE-2023-0386], minimumVersion: 6.1.0-18-amd64}\n  rules:\n    runAsRoot: {action: warn, whenKernelBehind: enforce}\n  exemptions:\n"
	for i := 0; i < 50; i++ {
		doc += fmt.Sprintf("    - {name: e%d, namespaces: [ns%d], images: [\"registry.example/%d/*\"], podLabels: {app: a%d}}\n", i, i, i, i)
	}
	return LoadBytes("worst.yaml", []byte(doc))
}

func kernelFixtureB(b *testing.B, name string) *KernelState {
	data, err := os.ReadFile(filepath.Join("testdata", "kernel", name+".json"))
	if err != nil {
		b.Fatal(err)
	}
	k, err := ParseKernelState(data)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// BenchmarkLoad measures loading and validating a policy (start-up and each
// policy change, never per container).
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Load("../examples/policies/baseline.yaml", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadSyntaxError is the error path of a policy with an
// indentation mistake near its end: syntaxLine's bisection reparses
// prefixes of the file. Compare with BenchmarkLoadBaselineBytes.
func BenchmarkLoadSyntaxError(b *testing.B) {
	data, err := os.ReadFile("../examples/policies/baseline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	data = append(data, " bad: indentation\n"...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := LoadBytes("x.yaml", data); err == nil {
			b.Fatal("loads")
		}
	}
}

// BenchmarkLoadBaselineBytes loads the same file without the mistake.
func BenchmarkLoadBaselineBytes(b *testing.B) {
	data, err := os.ReadFile("../examples/policies/baseline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := LoadBytes("x.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
