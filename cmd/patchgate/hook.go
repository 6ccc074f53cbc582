package main

import (
	"io"
	"os"

	"github.com/patchgate/patchgate/hook"
)

func init() {
	register(command{
		name:    "hook",
		summary: "OCI runtime hook (createRuntime): admit or block the container whose state is on stdin",
		run: func(args []string, stdout, stderr io.Writer) int {
			return hook.Main(args, hookStdin, stderr)
		},
	})
}

// hookStdin is the hook's stdin (tests replace it).
var hookStdin io.Reader = os.Stdin
