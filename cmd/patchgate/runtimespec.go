package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/patchgate/patchgate/hook"
)

func init() {
	register(command{
		name:    "runtime-spec",
		summary: "make containerd's base_runtime_spec: the node's `ctr oci spec` with patchgate's createRuntime hook",
		run:     runRuntimeSpec,
	})
}

// runRuntimeSpec reads containerd's default spec and writes the base runtime spec that runs
// `patchgate hook` for every application container, also while `patchgate nri` is down.
// Arguments after "--" are passed to `patchgate hook`.
func runRuntimeSpec(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("runtime-spec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ctr oci spec | patchgate runtime-spec [--path BIN] [--policy DIR] [--out FILE] [-- HOOK-FLAGS...]")
		fmt.Fprintln(stderr, "  then, in containerd's config, next to runtime_type of the runc runtime:")
		fmt.Fprintln(stderr, `    base_runtime_spec = "/etc/containerd/patchgate-base-spec.json"`)
		fs.PrintDefaults()
	}
	in := fs.String("in", "-", "containerd's default spec (`ctr oci spec` on this node); - is stdin")
	out := fs.String("out", "", "write the base spec here (atomically, mode 0644) instead of stdout")
	path := fs.String("path", defaultHookPath, "absolute path of the patchgate binary; must equal `patchgate nri --hook-path`, so the plugin injects no second hook")
	policyDir := fs.String("policy", "/etc/patchgate", "policy file or directory the hook decides with while the service is down")
	timeout := fs.Int("timeout", 5, "OCI hook timeout in seconds (the runtime kills the hook after it)")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	var data []byte
	var err error
	if *in == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, hook.MaxSpecBytes+1))
	} else {
		data, err = os.ReadFile(*in)
	}
	if err != nil {
		fmt.Fprintf(stderr, "patchgate runtime-spec: %v\n", err)
		return exitInvalid
	}
	spec, notes, err := hook.BaseRuntimeSpec(data, hook.BaseSpecOptions{
		Path:    *path,
		Args:    append([]string{"--policy=" + *policyDir}, fs.Args()...),
		Timeout: *timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "patchgate runtime-spec: %v\n", err)
		return exitInvalid
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "patchgate runtime-spec: %s\n", n)
	}
	if *out == "" {
		if _, err := stdout.Write(spec); err != nil {
			fmt.Fprintf(stderr, "patchgate runtime-spec: %v\n", err)
			return exitInvalid
		}
		return exitOK
	}
	if err := writeFileAtomic(*out, spec); err != nil {
		fmt.Fprintf(stderr, "patchgate runtime-spec: %v\n", err)
		return exitInvalid
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return exitOK
}

// writeFileAtomic writes data to path (mode 0644) through a temporary file in the same
// directory, so containerd never reads half a spec.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
