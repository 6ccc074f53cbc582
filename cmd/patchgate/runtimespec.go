package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/hook"
)

func init() {
	register(newRuntimeSpecCmd)
}

// runtimeSpecFlags are `patchgate runtime-spec`'s flags.
type runtimeSpecFlags struct {
	in, out, path, policyDir string
	timeout                  int
}

func newRuntimeSpecCmd() *cobra.Command {
	f := &runtimeSpecFlags{}
	cmd := &cobra.Command{
		Use:   "runtime-spec [flags] [-- HOOK-FLAGS...]",
		Short: "make containerd's base_runtime_spec: the node's ctr oci spec with patchgate's createRuntime hook",
		Long: `Read containerd's default spec and write the base runtime spec that runs
patchgate hook for every application container, also while patchgate nri is
down. Arguments after "--" are passed to patchgate hook.

  ctr oci spec | patchgate runtime-spec --out /etc/containerd/patchgate-base-spec.json

then, in containerd's config, next to runtime_type of the runc runtime:

  base_runtime_spec = "/etc/containerd/patchgate-base-spec.json"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, err := argsAfterDash(cmd, args)
			if err != nil {
				return err
			}
			return codeErr(runRuntimeSpec(f, extra, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.in, "in", "-", "containerd's default spec (ctr oci spec on this node); - is stdin")
	fs.StringVar(&f.out, "out", "", "write the base spec here (atomically, mode 0644) instead of stdout")
	fs.StringVar(&f.path, "path", defaultHookPath, "absolute path of the patchgate binary; must equal patchgate nri --hook-path, so the plugin injects no second hook")
	fs.StringVar(&f.policyDir, "policy", "/etc/patchgate", "policy file or directory the hook decides with while the service is down")
	fs.IntVar(&f.timeout, "timeout", 5, "OCI hook timeout in seconds (the runtime kills the hook after it)")
	return cmd
}

// runRuntimeSpec writes the base runtime spec; hookArgs are passed to
// `patchgate hook`.
func runRuntimeSpec(f *runtimeSpecFlags, hookArgs []string, stdin io.Reader, stdout, stderr io.Writer) int {
	in, out, path, policyDir, timeout := &f.in, &f.out, &f.path, &f.policyDir, &f.timeout
	var data []byte
	var err error
	if *in == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, hook.MaxSpecBytes+1))
	} else {
		data, err = os.ReadFile(*in)
	}
	if err != nil {
		fmt.Fprintf(stderr, "patchgate runtime-spec: %v\n", err)
		return exitInvalid
	}
	spec, notes, err := hook.BaseRuntimeSpec(data, hook.BaseSpecOptions{
		Path:    *path,
		Args:    append([]string{"--policy=" + *policyDir}, hookArgs...),
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
