//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/patchgate/patchgate/test/harness"
)

// Benchmarks of the harness's real operations on this machine (no timing assertions):
//
//	go test -tags e2e -run '^$' -bench Harness -benchtime 20x ./test/e2e/
//
// BenchmarkHarnessStart is a whole private containerd: start until ready, import both images,
// clean up. The others run against one containerd.

func BenchmarkHarnessStart(b *testing.B) {
	if toolsErr != nil {
		harness.SkipOrFail(b, toolsErr)
	}
	ctx := context.Background()
	for b.Loop() {
		h, err := harness.Start(ctx, harness.Options{Tools: tools})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(h.Timings.Ready.Microseconds())/1000, "ready-ms")
		if err := h.Cleanup(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchHarness(b *testing.B) *harness.Containerd {
	b.Helper()
	if toolsErr != nil {
		harness.SkipOrFail(b, toolsErr)
	}
	return harness.StartT(b, harness.Options{Tools: tools})
}

func BenchmarkHarnessRunPodHostNetwork(b *testing.B) {
	h := benchHarness(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		id, r := h.RunPod(ctx, harness.PodConfig{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", HostNetwork: true})
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if r := h.RemovePod(ctx, id); r.Err() != nil {
			b.Fatal(r.Err())
		}
		b.StartTimer()
	}
}

func BenchmarkHarnessRunPodPrivateNetwork(b *testing.B) {
	h := benchHarness(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		id, r := h.RunPod(ctx, harness.PodConfig{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench"})
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if r := h.RemovePod(ctx, id); r.Err() != nil {
			b.Fatal(r.Err())
		}
		b.StartTimer()
	}
}

// BenchmarkHarnessCreateStart is crictl create + crictl start of a busybox container in one
// host-network pod; ns/op is the sum, create-ms and start-ms the parts.
func BenchmarkHarnessCreateStart(b *testing.B) {
	h := benchHarness(b)
	ctx := context.Background()
	pod := harness.PodConfig{Name: "bench", Namespace: "bench", HostNetwork: true}
	podID, r := h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		b.Fatal(err)
	}
	var create, start float64
	i := 0
	for b.Loop() {
		i++
		id, r := h.CreateContainer(ctx, podID, pod, harness.ContainerConfig{Name: fmt.Sprintf("c%d", i), Command: harness.SleepCommand})
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		create += float64(r.Duration.Microseconds()) / 1000
		r = h.StartContainer(ctx, id)
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		start += float64(r.Duration.Microseconds()) / 1000
		b.StopTimer()
		if r := h.RemoveContainer(ctx, id); r.Err() != nil {
			b.Fatal(r.Err())
		}
		b.StartTimer()
	}
	b.ReportMetric(create/float64(b.N), "create-ms")
	b.ReportMetric(start/float64(b.N), "start-ms")
}

// BenchmarkHarnessCreateStart50 is the baseline for the "create and start 50 containers"
// figure: 50 sleeping busybox containers in one host-network pod, no NRI plugin connected.
func BenchmarkHarnessCreateStart50(b *testing.B) {
	h := benchHarness(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		pod := harness.PodConfig{Name: fmt.Sprintf("fifty-%d", i), Namespace: "bench", HostNetwork: true}
		podID, r := h.RunPod(ctx, pod)
		if err := r.Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		_, total, err := h.CreateStartMany(ctx, podID, pod, harness.ContainerConfig{Name: "c", Command: harness.SleepCommand}, 50)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(total.Seconds(), "crictl-s")
		b.StopTimer()
		if r := h.RemovePod(ctx, podID); r.Err() != nil {
			b.Fatal(r.Err())
		}
		b.StartTimer()
	}
}
