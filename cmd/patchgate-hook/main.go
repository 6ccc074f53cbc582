// Command patchgate-hook is the thin OCI hook (package hook/thin): the
// process a runtime starts for every container. It hands the container to
// the node service, which reads and judges its config.json, and runs the
// full local decision (`patchgate hook`, from the patchgate binary next to
// it) only when the service cannot answer. It takes `patchgate hook`'s
// flags; a leading "hook" argument (as hooks.d files written for the
// patchgate binary pass) is accepted and skipped. Build it as `make build`
// does: CGO_ENABLED=0, -trimpath, -ldflags='-s -w'.
package main

import (
	"os"

	"github.com/patchgate/patchgate/hook/thin"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "hook" {
		args = args[1:]
	}
	os.Exit(thin.Main(args, os.Stdin, os.Stderr, thin.ExecFull))
}
