package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/patchgate/patchgate/hook"
)

// DefaultHookPath is where packages and examples install the binary.
const defaultHookPath = "/usr/local/bin/patchgate"

func init() {
	register(command{
		name:    "hooks-config",
		summary: "print the hooks.d JSON that runs `patchgate hook` (podman, CRI-O)",
		run:     runHooksConfig,
	})
}

// runHooksConfig prints the hooks.d entry. Arguments after "--" are passed
// to `patchgate hook`, e.g. `-- --policy /etc/patchgate/policy.yaml`.
func runHooksConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hooks-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: patchgate hooks-config [--path BIN] [--stage createRuntime] [--identity-from none|containerd|crio] [-- HOOK-FLAGS...]")
		fs.PrintDefaults()
	}
	path := fs.String("path", defaultHookPath, "absolute path of the patchgate binary the runtime runs")
	stage := fs.String("stage", "createRuntime", "OCI hook stage (createRuntime, createContainer or prestart)")
	identityFrom := fs.String("identity-from", hook.IdentityFromNone, "runtime whose annotations name the pod and container: none, containerd or crio (use crio on a CRI-O node; podman: none)")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	extra := append([]string{"--identity-from=" + *identityFrom}, fs.Args()...)
	cfg, err := hook.NewHooksDConfig(*path, *stage, extra)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	out, err := cfg.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
