package main

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/internal/policytest"
)

func init() {
	register(newTestCmd)
}

func newTestCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "test DIR|FILE...",
		Short: "run policy tests (patchgate-test.yaml): expected decisions and rules per container and kernel state",
		Long: fmt.Sprintf(`Run every %s under each DIR (see docs/policy-testing.md) and print what
differs. Exit 0 when all cases pass, 1 when a case failed, 2 when a test file or
an input it names is invalid.`, policytest.FileName),
		Args: minArgs(1, "directory or test file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(runTest(args, output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// runTest is `patchgate test [-o text|json|yaml] PATH...`; internal/policytest
// does the work (text or JSON; YAML is its JSON converted).
func runTest(paths []string, output string, stdout, stderr io.Writer) int {
	if output != outputYAML {
		return policytest.Main(context.Background(), paths, output, stdout, stderr)
	}
	var js bytes.Buffer
	code := policytest.Main(context.Background(), paths, outputJSON, &js, stderr)
	if js.Len() == 0 {
		return code
	}
	y, err := yaml.JSONToYAML(js.Bytes())
	if err != nil {
		return fail(stderr, "patchgate test: %v\n", err)
	}
	if _, err := stdout.Write(y); err != nil {
		return fail(stderr, "patchgate test: %v\n", err)
	}
	return code
}
