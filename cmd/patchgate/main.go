// Command patchgate is node-level admission control for containers that share
// one Linux kernel. Each subcommand lives in its own file and registers itself
// in commands; main only dispatches.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitDenied  = 1 // denied, not compliant
	exitInvalid = 2 // invalid input, or state that could not be read
)

// command is one subcommand. run gets the arguments after the subcommand name
// and returns the process exit code; only main exits.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("patchgate: duplicate subcommand " + c.name)
	}
	commands[c.name] = c
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: patchgate <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	// containerd launches a pre-registered NRI plugin (/opt/nri/plugins/10-patchgate)
	// with no arguments and its connection in NRI_PLUGIN_SOCKET.
	if len(args) == 0 && os.Getenv("NRI_PLUGIN_SOCKET") != "" {
		args = []string{"nri"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitInvalid
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "patchgate: unknown command %q\n", args[0])
		usage(stderr)
		return exitInvalid
	}
	return c.run(args[1:], stdout, stderr)
}
