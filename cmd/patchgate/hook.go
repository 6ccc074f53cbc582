package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/hook"
)

func init() {
	register(newHookCmd)
}

const hookShort = "OCI runtime hook (createRuntime): admit or block the container whose state is on stdin"

// newHookCmd is `hook` in the command tree, for help and completion only:
// dispatch runs `patchgate hook` before the tree is built (runHook), since
// the runtime runs it for every container and waits for it.
func newHookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:                "hook [flags] < state.json",
		Short:              hookShort,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(runHook(args, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	// `patchgate help hook` shows the hook's own flags.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		runHook([]string{"--help"}, c.OutOrStdout(), c.ErrOrStderr())
	})
	return cmd
}

// runHook is `patchgate hook`. Its flags are the hook package's (the thin
// hook patchgate-hook accepts the same): standard library parsing, and any
// flag it cannot parse blocks the container. A lone -h, --help or help is a
// person asking: the usage, exit 0. (A runtime never passes that alone; a
// hooks.d entry that did would be refused by `patchgate hooks-config`.)
func runHook(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintf(stdout, "%s.\n\nusage: patchgate hook [flags] < state.json\n\n", hookShort)
		fmt.Fprintln(stdout, "The runtime runs it with the container's state (OCI runtime-spec) on stdin;")
		fmt.Fprintln(stdout, "it prints one line and exits 0 to admit the container, non-zero to block it.")
		fmt.Fprintln(stdout, "\nflags:")
		hook.PrintDefaults(stdout)
		return exitOK
	}
	return hook.Main(args, hookStdin, stderr)
}

// hookStdin is the hook's stdin (tests replace it).
var hookStdin io.Reader = os.Stdin
