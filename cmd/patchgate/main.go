// Command patchgate is node-level admission control for containers that share
// one Linux kernel. The command line is a cobra tree (kubectl, crictl and
// nerdctl users expect its conventions: help that exits 0, flags after
// arguments, shell completion); each subcommand lives in its own file and
// registers its constructor in commands; main only dispatches.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/internal/buildinfo"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitDenied  = 1 // denied, not compliant
	exitInvalid = 2 // invalid input, or state that could not be read
)

// exitCode carries a subcommand's exit code through cobra's error return.
// The subcommand has already said what went wrong; dispatch prints nothing
// more for it.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// codeErr turns a subcommand's exit code into RunE's error (nil for 0).
func codeErr(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

// commands are the constructors of the subcommands, registered by each
// file's init. The tree is built anew for every dispatch, so flag values
// never leak from one run (or test) into the next.
var commands []func() *cobra.Command

func register(newCmd func() *cobra.Command) {
	commands = append(commands, newCmd)
}

// newRootCmd builds the whole command tree writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "patchgate",
		Short: "node-level admission control for containers that share one Linux kernel",
		Long: `patchgate admits or refuses containers on a node by a policy that knows the
kernel they share: its live-patch state, and the workload's settings that
reach the host (privileged, host namespaces and paths, capabilities, ...).

Exit codes: 0 ok (admitted, compliant, valid), 1 denied (refused, not
compliant), 2 invalid input or state that could not be read.`,
		// Without a subcommand: the help, as an error (exit 2).
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				_, err := io.WriteString(cmd.OutOrStdout(), versionText(buildinfo.Get()))
				return err
			}
			cmd.SetOut(cmd.ErrOrStderr())
			if err := cmd.Help(); err != nil {
				return err
			}
			return exitCode(exitInvalid)
		},
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	// --version is patchgate's own flag, not cobra's Version: cobra's
	// version template would link text/template, whose reflection turns
	// off the linker's dead code elimination (a third larger binary, and
	// a slower start of every `patchgate hook`).
	root.Flags().BoolVar(&showVersion, "version", false, "print the version, commit, build date and Go version (as patchgate version)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, newCmd := range commands {
		root.AddCommand(newCmd())
	}
	// Flag errors name the command and the way to its help; usage is not
	// dumped after every typo.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{cmd: cmd, err: err}
	})
	return root
}

// usageError is a mistake on the command line: a flag, argument or command
// patchgate does not know. Exit 2.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the command args names. What it prints goes through a
// writer that keeps the first write error: commands print with fmt.Fprint*
// and do not check each call (tools/lint/errcheck.excludes), and a stdout
// that failed (a closed pipe, a full disk) turns a successful exit into
// exit 2, with the reason on stderr, so a script never takes cut output
// for a whole answer.
func dispatch(args []string, stdout, stderr io.Writer) int {
	out := &stickyWriter{w: stdout}
	code := dispatchTo(args, out, stderr)
	if out.err != nil && code == exitOK {
		fmt.Fprintf(stderr, "patchgate: writing the output: %v\n", out.err)
		return exitInvalid
	}
	return code
}

// stickyWriter writes to w until a write fails, then keeps that error and
// writes nothing more.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

func dispatchTo(args []string, stdout, stderr io.Writer) int {
	// containerd launches a pre-registered NRI plugin (/opt/nri/plugins/10-patchgate)
	// with no arguments and its connection in NRI_PLUGIN_SOCKET.
	if len(args) == 0 && os.Getenv("NRI_PLUGIN_SOCKET") != "" {
		args = []string{"nri"}
	}
	// The runtime runs `patchgate hook` for every container: it starts
	// without building the command tree (hook.go).
	if len(args) > 0 && args[0] == "hook" {
		return runHook(args[1:], stdout, stderr)
	}
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	// cobra's own errors: an unknown command, flag or argument, or a
	// missing required one.
	var ue usageError
	if errors.As(err, &ue) {
		cmd = ue.cmd
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return exitInvalid
}

// noArgs refuses positional arguments on a command that takes none.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

// subcommandArgs refuses arguments to a command that only groups others:
// the first one is a subcommand it does not have.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}

// minArgs wants at least n positional arguments, named what.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("give at least %d %s", n, what)
		}
		return nil
	}
}

// argsAfterDash splits the arguments of a command that passes those after
// "--" to `patchgate hook`: none may stand before the "--".
func argsAfterDash(cmd *cobra.Command, args []string) ([]string, error) {
	at := cmd.ArgsLenAtDash()
	if at < 0 {
		at = len(args)
	}
	if at > 0 {
		return nil, usageError{cmd: cmd, err: fmt.Errorf("unexpected argument %q (hook flags go after --)", strings.Join(args[:at], " "))}
	}
	return args[at:], nil
}
