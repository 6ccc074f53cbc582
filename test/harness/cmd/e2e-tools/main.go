// Command e2e-tools builds (or finds up to date) the binaries patchgate's end-to-end harness
// runs: containerd v2.4.2, ctr, containerd-shim-runc-v2 and crictl v1.37.0 from the pins in
// test/tools, plus the static pause. scripts/e2e.sh runs it before `go test -tags e2e`, so the
// build time does not count against the test timeout. It prints the binary directory.
//
//	go run ./test/harness/cmd/e2e-tools [-nri stock|nri-v0.12.5] [-containerd v2.4.2|v1.7.35,v2.1.9|all] [-sweep] [-kubernetes]
//
// With -kubernetes it also builds the single-node Kubernetes of test/k8se2e (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl) into
// $PATCHGATE_CACHE/k8s/<version>; cold, that takes tens of minutes.
// With -containerd it builds each listed release in turn (default v2.4.2; "all" is every
// release of the scenario matrix, and $PATCHGATE_E2E_CONTAINERD is the default list when set).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("e2e-tools", flag.ContinueOnError)
	variant := fs.String("nri", "", "containerd's NRI variant: stock (v0.12.3, default, or $PATCHGATE_E2E_NRI) or nri-v0.12.5")
	sweep := fs.Bool("sweep", false, "also clean up harness directories in /tmp whose test process died")
	releases := fs.String("containerd", "", "containerd releases to build, comma-separated, or all (default "+harness.ContainerdVersion+", or $PATCHGATE_E2E_CONTAINERD)")
	kube := fs.Bool("kubernetes", false, "also build Kubernetes "+harness.KubernetesVersion+" for test/k8se2e")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	versions := []string{harness.ContainerdVersion}
	if *releases != "" || os.Getenv("PATCHGATE_E2E_CONTAINERD") != "" {
		if *releases != "" {
			if err := os.Setenv("PATCHGATE_E2E_CONTAINERD", *releases); err != nil {
				fmt.Fprintf(os.Stderr, "e2e-tools: %v\n", err)
				return 2
			}
		}
		var err error
		if versions, err = harness.MatrixVersions(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e-tools: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var t *harness.Tools
	for _, v := range versions {
		began := time.Now()
		o := harness.ToolsOptions{Variant: *variant, Containerd: v, Log: os.Stderr}
		if v != harness.ContainerdVersion {
			o.Variant = harness.NRIStock
		}
		var err error
		if t, err = harness.EnsureTools(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "e2e-tools: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e-tools: containerd %s: %s ready in %s (rebuilt: %t)\n", v, t.BinDir, time.Since(began).Round(time.Millisecond), t.Rebuilt)
	}
	if *kube {
		began := time.Now()
		k, err := harness.EnsureKubernetes(ctx, harness.KubeToolsOptions{Log: os.Stderr})
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e-tools: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e-tools: Kubernetes %s: %s ready in %s (rebuilt: %t)\n", harness.KubernetesVersion, k.Dir, time.Since(began).Round(time.Millisecond), k.Rebuilt)
	}
	if *sweep {
		swept, err := harness.SweepStale(ctx, "")
		for _, d := range swept {
			fmt.Fprintf(os.Stderr, "e2e-tools: removed stale %s\n", d)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e-tools: sweep: %v\n", err)
			return 1
		}
	}
	fmt.Println(t.BinDir)
	return 0
}
