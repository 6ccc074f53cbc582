// Command patchgate-hook is `patchgate hook` alone, in a binary that links
// neither the NRI plugin nor the metrics server, so that the process a
// runtime starts for every container starts faster. It takes the same
// flags; a leading "hook" argument (as hooks.d files written for the
// patchgate binary pass) is accepted and skipped.
package main

import (
	"os"

	"github.com/patchgate/patchgate/hook"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "hook" {
		args = args[1:]
	}
	os.Exit(hook.Main(args, os.Stdin, os.Stderr))
}
