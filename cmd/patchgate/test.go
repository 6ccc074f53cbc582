package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/patchgate/patchgate/internal/policytest"
)

func init() {
	register(command{name: "test", summary: "run policy tests (patchgate-test.yaml): expected decisions and rules per container and kernel state", run: runTest})
}

// runTest is `patchgate test [-o text|json] PATH...`; internal/policytest
// does the work. Exit 0 all cases pass, 1 a case failed, 2 a test file or
// an input it names is invalid.
func runTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("patchgate test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: patchgate test [-o text|json] DIR|FILE...")
		fmt.Fprintf(stderr, "runs every %s under each DIR (see docs/policy-testing.md)\n", policytest.FileName)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitInvalid
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "patchgate test: give a directory or test file")
		return exitInvalid
	}
	return policytest.Main(context.Background(), fs.Args(), *output, stdout, stderr)
}
