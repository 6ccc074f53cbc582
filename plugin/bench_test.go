package plugin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"google.golang.org/protobuf/proto"
)

// BenchmarkCreateContainerRoundTrip measures what containerd waits for on
// every container create: the real NRI runtime side (pkg/adaptation) sends
// CreateContainer to patchgate over the unix socket, patchgate answers with
// its adjustments, then the runtime asks patchgate's validator, which
// decides with the in-process node service (and writes the audit record
// when there is one). Reported: mean (ns/op), p50 and p99.
//
//	go test -run='^$' -bench=CreateContainerRoundTrip -benchtime=2000x ./plugin/
func BenchmarkCreateContainerRoundTrip(b *testing.B) {
	for _, tc := range []struct{ name, capture string }{
		{"allowed", "seccomp-unconfined"}, // uid 1000: admitted, no record
		{"flagged", "default-kubelet"},    // root under a warn policy: annotated, audited
		{"denied", "privileged"},          // refused, audited
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{hookPath: "/usr/local/bin/patchgate"})
			pod, ctr := loadCapture(b, tc.capture)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// The runtime side records the adjustments in the request's
				// container: each create gets a fresh one, as in containerd.
				req := &adaptation.CreateContainerRequest{Pod: pod, Container: proto.Clone(ctr).(*api.Container)}
				start := time.Now()
				_, err := h.rt.CreateContainer(ctx, req)
				lat = append(lat, time.Since(start))
				if (err != nil) != (tc.name == "denied") {
					b.Fatalf("unexpected result: %v", err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkHandlers is patchgate's own share of the round trip: the
// CreateContainer and ValidateContainerAdjustment handlers called directly
// (conversion, adjustment, policy evaluation, audit record for the flagged
// and denied cases), without the socket and the runtime side.
//
//	go test -run='^$' -bench=Handlers -benchtime=20000x ./plugin/
func BenchmarkHandlers(b *testing.B) {
	for _, tc := range []struct{ name, capture string }{
		{"allowed", "seccomp-unconfined"},
		{"flagged", "default-kubelet"},
		{"denied", "privileged"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{hookPath: "/usr/local/bin/patchgate"})
			pod, ctr := loadCapture(b, tc.capture)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				adj, _, err := h.p.CreateContainer(ctx, pod, ctr)
				if err != nil {
					b.Fatal(err)
				}
				err = h.p.ValidateContainerAdjustment(ctx, &api.ValidateContainerAdjustmentRequest{Pod: pod, Container: ctr, Adjust: adj})
				lat = append(lat, time.Since(start))
				if (err != nil) != (tc.name == "denied") {
					b.Fatalf("unexpected result: %v", err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
