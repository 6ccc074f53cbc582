// Command e2e-tools builds (or finds up to date) the binaries patchgate's end-to-end harness
// runs: containerd v2.4.2, ctr, containerd-shim-runc-v2 and crictl v1.37.0 from the pins in
// test/tools, plus the static pause. scripts/e2e.sh runs it before `go test -tags e2e`, so the
// build time does not count against the test timeout. It prints the binary directory.
//
//	go run ./test/harness/cmd/e2e-tools [-nri stock|nri-v0.12.5] [-sweep]
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
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	t, err := harness.EnsureTools(ctx, harness.ToolsOptions{Variant: *variant, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e-tools: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e-tools: %s ready in %s (rebuilt: %t)\n", t.BinDir, time.Since(began).Round(time.Millisecond), t.Rebuilt)
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
