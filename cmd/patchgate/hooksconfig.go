package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/hook"
)

// DefaultHookPath is where packages and examples install the thin hook
// (patchgate-hook, with patchgate next to it for the full decision).
const defaultHookPath = "/usr/local/bin/patchgate-hook"

func init() {
	register(newHooksConfigCmd)
}

// DefaultCRIOHooksDir is where `hooks-config --identity-from crio` writes
// its entry: a directory only CRI-O reads, named in crio.conf's
// [crio.runtime] hooks_dir.
const DefaultCRIOHooksDir = "/etc/patchgate/crio-hooks.d"

// podmanHooksDirs are the hooks directories podman (and CRI-O when
// hooks_dir is unset) reads by default (oci-hooks(5), crio.conf(5)). A hook
// there that trusts CRI-O's annotations would trust them on podman
// containers too, whose creator writes them.
var podmanHooksDirs = []string{"/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"}

// hooksFileName is the entry's name in its directory.
const hooksFileName = "patchgate.json"

// hooksConfigFlags are `patchgate hooks-config`'s flags.
type hooksConfigFlags struct {
	path, stage, identityFrom, dir string
}

func newHooksConfigCmd() *cobra.Command {
	f := &hooksConfigFlags{}
	cmd := &cobra.Command{
		Use:   "hooks-config [flags] [-- HOOK-FLAGS...]",
		Short: "print the hooks.d JSON that runs patchgate hook (podman, CRI-O)",
		Long: `Print (or, with --dir, write) the hooks.d entry that runs the hook for every
container. Arguments after "--" are passed to the hook, e.g.
-- --policy /etc/patchgate/policy.yaml.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, err := argsAfterDash(cmd, args)
			if err != nil {
				return err
			}
			return codeErr(runHooksConfig(f, extra, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.path, "path", defaultHookPath, "absolute path of the hook binary the runtime runs (the thin hook patchgate-hook, or patchgate)")
	fs.StringVar(&f.stage, "stage", "createRuntime", "OCI hook stage (createRuntime, createContainer or prestart)")
	fs.StringVar(&f.identityFrom, "identity-from", hook.IdentityFromNone, "runtime whose annotations name the pod and container: none, containerd or crio (use crio on a CRI-O node; podman: none)")
	fs.StringVar(&f.dir, "dir", "", "write "+hooksFileName+" into this hooks directory instead of printing it (with --identity-from crio: default "+DefaultCRIOHooksDir+", and never a directory podman reads)")
	return cmd
}

// runHooksConfig prints the hooks.d entry; hookArgs are passed to
// `patchgate hook`.
func runHooksConfig(f *hooksConfigFlags, hookArgs []string, stdout, stderr io.Writer) int {
	path, identityFrom, dir := &f.path, &f.identityFrom, &f.dir
	if *identityFrom == hook.IdentityFromCRIO && *dir == "" {
		*dir = DefaultCRIOHooksDir
	}
	if *dir != "" {
		if err := checkHooksDir(*dir, *identityFrom); err != nil {
			fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
			return exitInvalid
		}
	}
	extra := append([]string{"--identity-from=" + *identityFrom}, hookArgs...)
	cfg, err := hook.NewHooksDConfig(*path, f.stage, extra)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	out, err := cfg.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	if *dir != "" {
		path, err := writeHooksFile(*dir, out)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
			return exitInvalid
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
		return exitOK
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "patchgate hooks-config: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// checkHooksDir refuses a hooks directory that is not absolute, and, for a
// hook that trusts CRI-O's identity annotations, one podman reads by
// default (also when dir is, or leads through, a symlink to it).
func checkHooksDir(dir, identityFrom string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return fmt.Errorf("--dir %q must be a clean absolute path", dir)
	}
	if identityFrom != hook.IdentityFromCRIO {
		return nil
	}
	resolved := resolveDir(dir)
	for _, p := range podmanHooksDirs {
		if dir == p || resolved == p || resolved == resolveDir(p) {
			return fmt.Errorf("--identity-from crio: refusing hooks directory %s: podman reads it too, and podman lets whoever creates a container set the CRI-O annotations that name its pod (namespace kube-system, and so its exemptions); use a directory only CRI-O reads (default %s) and name it in crio.conf: [crio.runtime] hooks_dir = [%q]", dir, DefaultCRIOHooksDir, DefaultCRIOHooksDir)
		}
	}
	return nil
}

// resolveDir follows the symlinks of dir component by component, also
// dangling ones and ones below a path that does not exist yet, so a link
// to podman's directory is seen before that directory exists.
func resolveDir(dir string) string {
	queue := strings.Split(strings.TrimPrefix(filepath.Clean(dir), "/"), "/")
	cur := "/"
	for hops := 0; len(queue) > 0 && hops < 255; {
		c := queue[0]
		queue = queue[1:]
		if c == "" || c == "." {
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		hops++
		if filepath.IsAbs(target) {
			cur = "/"
		}
		queue = append(strings.Split(strings.TrimPrefix(filepath.Clean(target), "/"), "/"), queue...)
	}
	return cur
}

// writeHooksFile writes data as dir/patchgate.json (mode 0644, replaced
// atomically), creating dir (0755) when missing.
func writeHooksFile(dir string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, hooksFileName)
	tmp, err := os.CreateTemp(dir, "."+hooksFileName+".*")
	if err != nil {
		return "", err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}
