package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func TestDispatchUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"no-such-command"}, &out, &errb); code != exitInvalid {
		t.Fatalf("exit code = %d, want %d", code, exitInvalid)
	}
	if !strings.Contains(errb.String(), `unknown command "no-such-command"`) {
		t.Fatalf("stderr = %q", errb.String())
	}
}

func TestDispatchVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		if code := dispatch(args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit code = %d, stderr %q", args, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), "patchgate ") {
			t.Fatalf("%v: stdout = %q", args, out.String())
		}
		for _, want := range []string{"\ncommit: ", "\ndate: ", "\ngo: go"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: stdout %q lacks %q", args, out.String(), want)
			}
		}
	}
}

// allCommands walks the command tree: every command's path below the root
// (e.g. ["policy", "validate"]).
func allCommands(t *testing.T) [][]string {
	t.Helper()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			p := append(append([]string{}, path...), sub.Name())
			paths = append(paths, p)
			walk(sub, p)
		}
	}
	walk(newRootCmd(io.Discard, io.Discard), nil)
	if len(paths) < 10 {
		t.Fatalf("only %d commands in the tree: %v", len(paths), paths)
	}
	return paths
}

// Help exits 0 on every command, however it is asked for, and prints to
// stdout; the hook's help is help, not a refusal.
func TestHelpExitsZeroEverywhere(t *testing.T) {
	for _, path := range append(allCommands(t), nil) {
		for _, form := range [][]string{
			append(append([]string{}, path...), "--help"),
			append(append([]string{}, path...), "-h"),
			append([]string{"help"}, path...),
		} {
			var out, errb bytes.Buffer
			code := dispatch(form, &out, &errb)
			if code != exitOK {
				t.Errorf("%v: exit %d, stderr %q", form, code, errb.String())
			}
			if out.Len() == 0 {
				t.Errorf("%v: no help on stdout (stderr %q)", form, errb.String())
			}
			if strings.Contains(out.String()+errb.String(), "blocked the container") {
				t.Errorf("%v: help says the container was blocked: %q", form, out.String()+errb.String())
			}
		}
	}
}

// Unknown flags and arguments are exit 2 with a message naming the command
// and the way to its help, on every command that parses its flags.
func TestUnknownFlagExitsTwoEverywhere(t *testing.T) {
	for _, path := range allCommands(t) {
		if path[0] == "hook" || path[0] == "completion" && len(path) == 1 {
			continue // the hook parses its own flags (hook package); completion groups shells
		}
		args := append(append([]string{}, path...), "--no-such-flag")
		var out, errb bytes.Buffer
		if code := dispatch(args, &out, &errb); code != exitInvalid {
			t.Errorf("%v: exit %d, want %d", args, code, exitInvalid)
		}
		want := "patchgate " + strings.Join(path, " ") + ": unknown flag: --no-such-flag"
		if !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "--help' for usage") {
			t.Errorf("%v: stderr %q, want %q and a pointer to --help", args, errb.String(), want)
		}
	}
}

// No command at all: the usage on stderr, exit 2. (A runtime-launched NRI
// plugin gets no arguments too, but NRI_PLUGIN_SOCKET: TestNRILaunchedNoArgs.)
func TestNoCommand(t *testing.T) {
	t.Setenv("NRI_PLUGIN_SOCKET", "")
	var out, errb bytes.Buffer
	if code := dispatch(nil, &out, &errb); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	if out.Len() != 0 || !strings.Contains(errb.String(), "Available Commands:") {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}

// Flag help texts read well: pflag takes a `quoted` word of a usage string
// as the value's name, so a backticked phrase garbles the help.
func TestFlagUsageNotGarbled(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflagFlag) {
			name, usage := unquoteUsage(f)
			if strings.ContainsAny(name, " `") || strings.Contains(usage, "`") {
				t.Errorf("%s --%s: value name %q, usage %q", c.CommandPath(), f.Name, name, usage)
			}
		})
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	check(newRootCmd(io.Discard, io.Discard))
}

// `patchgate hook` keeps refusing a container on flags it cannot parse;
// only a lone help flag is help.
func TestHookBadFlagStillBlocks(t *testing.T) {
	var out, errb bytes.Buffer
	code := dispatch([]string{"hook", "--help", "--policy", "/x"}, &out, &errb)
	if code == exitOK || !strings.Contains(errb.String(), "blocked the container") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = dispatch([]string{"hook", "--no-such-flag"}, &out, &errb)
	if code == exitOK || !strings.Contains(errb.String(), "blocked the container") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

type pflagFlag = pflag.Flag

func unquoteUsage(f *pflag.Flag) (string, string) { return pflag.UnquoteUsage(f) }

// cliDocPath is the command-line reference; its "## Commands" part is
// generated by TestCLIDoc.
const cliDocPath = "../../docs/cli.md"

// TestCLIDoc: docs/cli.md's "## Commands" part is the help of every command
// in the tree (cobra's own help command aside), exactly as `patchgate CMD
// --help` prints it, one "### patchgate CMD" section each. A new command, flag
// or wording fails this test until the doc is regenerated:
//
//	PATCHGATE_UPDATE_DOCS=1 go test -run TestCLIDoc ./cmd/patchgate
func TestCLIDoc(t *testing.T) {
	doc, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## Commands\n"
	i := bytes.Index(doc, []byte(heading))
	if i < 0 {
		t.Fatalf("%s has no %q heading", cliDocPath, strings.TrimSpace(heading))
	}
	head, rest := doc[:i+len(heading)], doc[i+len(heading):]
	var tail []byte
	if j := bytes.Index(rest, []byte("\n## ")); j >= 0 {
		tail = rest[j:]
	}
	// The help shows the defaults a node has, not TestMain's temporary ones.
	savedDir, savedStatus := nodePolicyDir, defaultStatusFile
	nodePolicyDir, defaultStatusFile = policy.DefaultDir, service.DefaultStatusFile
	defer func() { nodePolicyDir, defaultStatusFile = savedDir, savedStatus }()
	var b bytes.Buffer
	b.WriteString("\n<!-- Generated from the command tree: PATCHGATE_UPDATE_DOCS=1 go test -run TestCLIDoc ./cmd/patchgate -->\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		var out, errb bytes.Buffer
		if code := dispatch(args, &out, &errb); code != exitOK || errb.Len() > 0 || out.Len() == 0 {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, out.Len(), errb.String())
		}
		fmt.Fprintf(&b, "\n### %s\n\n```\n%s```\n", c.CommandPath(), out.String())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd() // cobra adds it when the tree runs
	walk(root)
	want := slices.Concat(head, b.Bytes(), tail)
	if os.Getenv("PATCHGATE_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(cliDocPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(doc, want) {
		got, exp := strings.Split(string(doc), "\n"), strings.Split(string(want), "\n")
		n := 0
		for n < len(got) && n < len(exp) && got[n] == exp[n] {
			n++
		}
		line := func(l []string) string {
			if n < len(l) {
				return l[n]
			}
			return "(end of file)"
		}
		t.Errorf("%s is not the help the commands print; first difference at line %d:\n  doc:  %q\n  help: %q\nregenerate: PATCHGATE_UPDATE_DOCS=1 go test -run TestCLIDoc ./cmd/patchgate",
			cliDocPath, n+1, line(got), line(exp))
	}
}

// failingWriter fails every write, as a closed pipe or a full disk does.
type failingWriter struct{ n int }

func (w *failingWriter) Write([]byte) (int, error) {
	w.n++
	return 0, errors.New("no space left on device")
}

// TestOutputWriteFails: a command whose output could not be written does not
// exit 0 (a script would take the cut output for the answer); it exits 2 and
// says why on stderr. Help, versions and documents alike.
func TestOutputWriteFails(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"version", "-o", "json"}, {"--help"}, {"policy", "validate", "../../examples/policies/audit-only.yaml"}} {
		out := &failingWriter{}
		var errb bytes.Buffer
		code := dispatch(args, out, &errb)
		if out.n == 0 {
			t.Fatalf("%v: wrote nothing, the test proves nothing", args)
		}
		if code != exitInvalid || !strings.Contains(errb.String(), "no space left on device") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the write error", args, code, errb.String())
		}
	}
}
