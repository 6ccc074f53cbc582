package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/hook/thin"
	"github.com/patchgate/patchgate/internal/trustedpath"
)

// `patchgate install` copies patchgate and the thin hook onto the host: the
// DaemonSet's init container runs it from the image, which is FROM scratch
// and so has no install(1) or cp(1).
func init() {
	register(newInstallCmd)
}

// installOrder is the order the binaries are installed in: patchgate
// first. The thin hook runs `patchgate hook` from its own directory when
// the node service cannot answer (thin.ExecFull), so a hook installed
// before patchgate would, if the install stopped between the two, call a
// binary that is not there and block every container. patchgate first
// leaves at worst a new patchgate next to the old hook (or no hook yet),
// and the old hook's flags are ones the new `patchgate hook` accepts.
var installOrder = []string{thin.FullName, "patchgate-hook"}

// installFlags are `patchgate install`'s flags.
type installFlags struct {
	dest, from string
}

func newInstallCmd() *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "install --dest DIR",
		Short: "copy patchgate and patchgate-hook into a directory (the DaemonSet's init container)",
		Long: `Copy patchgate and the thin hook patchgate-hook from --from (default: the
directory of this patchgate) into --dest, creating it (mode 0755) if missing.
Each binary is written to a temporary file in --dest, synced, made 0755 and
renamed over the old one: a runtime running the old binary keeps its file,
and none ever runs a half-written one. patchgate goes first, since the hook
runs the patchgate next to it.

The runtime runs the hook as root for every container, so --dest and every
directory above it must be owned by root (or the user running install) and
not writable by group or others; otherwise nothing is written (exit 2).

Prints one line per installed file in sha256sum(1) format.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runInstall(f, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dest, "dest", "", "directory to install into, e.g. /host/opt/patchgate/bin (required)")
	fs.StringVar(&f.from, "from", "", "directory holding patchgate and patchgate-hook (default: the directory of this executable)")
	return cmd
}

func runInstall(f *installFlags, stdout, stderr io.Writer) int {
	if f.dest == "" {
		return fail(stderr, "patchgate install: --dest is required\n")
	}
	from := f.from
	if from == "" {
		exe, err := os.Executable()
		if err != nil {
			return fail(stderr, "patchgate install: finding this executable: %v\n", err)
		}
		from = filepath.Dir(exe)
	}
	// Every source is opened before anything is written: a missing one
	// leaves the destination as it was.
	srcs := make([]*os.File, 0, len(installOrder))
	defer func() {
		for _, s := range srcs {
			_ = s.Close()
		}
	}()
	for _, name := range installOrder {
		s, err := openSource(filepath.Join(from, name))
		if err != nil {
			return fail(stderr, "patchgate install: %v\n", err)
		}
		srcs = append(srcs, s)
	}
	dest, err := trustedDir(f.dest)
	if err != nil {
		return fail(stderr, "patchgate install: %v\n", err)
	}
	for i, name := range installOrder {
		sum, err := installFile(srcs[i], dest, name)
		if err != nil {
			return fail(stderr, "patchgate install: %v\n", err)
		}
		fmt.Fprintf(stdout, "%x  %s\n", sum, filepath.Join(f.dest, name))
	}
	return exitOK
}

// openSource opens a binary to install; it must be a regular file.
func openSource(path string) (*os.File, error) {
	s, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := s.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// errUntrustedDest: someone but root (or the user running install) could
// replace what is installed.
var errUntrustedDest = errors.New("refusing to install")

// trustedDir creates dir (0755) if missing and returns the path it
// resolves to, once trustedpath has found no directory from "/" down to it,
// and it itself, that anyone else could write or own. The nearest existing
// directory is judged before anything is created: no directory is made
// under one that is refused.
func trustedDir(dir string) (string, error) {
	existing := dir
	for {
		if _, err := os.Lstat(existing); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		existing = parent
	}
	if _, err := checkDir(existing); err != nil {
		return "", fmt.Errorf("%w into %s: %w", errUntrustedDest, dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	resolved, err := checkDir(dir)
	if err != nil {
		return "", fmt.Errorf("%w into %s: %w", errUntrustedDest, dir, err)
	}
	return resolved, nil
}

// checkDir is trustedpath's judgement of the directory dir and every one
// above it; it returns the path dir resolves to.
func checkDir(dir string) (string, error) {
	resolved, err := trustedpath.Chain(dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return resolved, trustedpath.Check(resolved, fi)
}

// installFile copies src to dir/name through a temporary file in dir that
// is synced, made 0755 and renamed over dir/name, then syncs dir. It
// returns the sha256 of what it wrote.
func installFile(src *os.File, dir, name string) (sum []byte, err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".install-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.Copy(io.MultiWriter(tmp, h), src); err != nil {
		return nil, fmt.Errorf("copying %s: %w", src.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return nil, err
	}
	if err = tmp.Chmod(0o755); err != nil {
		return nil, err
	}
	if err = tmp.Close(); err != nil {
		return nil, err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
