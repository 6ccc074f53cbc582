package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(command{name: "policy", summary: "validate policy files, or show the effective policy", run: runPolicy})
}

func policyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: patchgate policy validate [--node-name NAME] PATH...")
	fmt.Fprintln(w, "       patchgate policy show [--policy PATH] [--node-name NAME] [-o yaml|json]")
}

func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		policyUsage(stderr)
		return exitInvalid
	}
	switch args[0] {
	case "validate":
		return runPolicyValidate(args[1:], stdout, stderr)
	case "show":
		return runPolicyShow(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		policyUsage(stderr)
		return exitOK
	}
	fmt.Fprintf(stderr, "patchgate policy: unknown subcommand %q\n", args[0])
	policyUsage(stderr)
	return exitInvalid
}

// runPolicyValidate loads every path (file or directory) and lists every
// problem as file:line: message. Exit 0 when all are valid, 2 otherwise.
func runPolicyValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("patchgate policy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeName := fs.String("node-name", hostname(), "node name: selects nodes/<name>.yaml in a policy directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitInvalid
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "patchgate policy validate: give at least one policy file or directory")
		return exitInvalid
	}
	code := exitOK
	for _, path := range fs.Args() {
		p, err := policy.Load(path, *nodeName)
		if err != nil {
			code = exitInvalid
			var ve *policy.ValidationError
			if errors.As(err, &ve) {
				for _, e := range ve.Errors {
					fmt.Fprintln(stderr, e.Error())
				}
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", path, err)
			}
			continue
		}
		fmt.Fprintf(stdout, "%s: valid (policy %q, %s, %d %s)\n", path, p.Name(), p.Digest(), len(p.Sources), plural(len(p.Sources), "file", "files"))
	}
	return code
}

// runPolicyShow prints the effective merged policy with every default filled
// in.
func runPolicyShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("patchgate policy show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("policy", "", "policy file or directory; empty: the built-in default policy")
	nodeName := fs.String("node-name", hostname(), "node name: selects nodes/<name>.yaml in a policy directory")
	output := fs.String("o", "yaml", "output format: yaml or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitInvalid
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "patchgate policy show: unexpected argument %q\n", fs.Arg(0))
		return exitInvalid
	}
	p, err := loadPolicy(*path, *nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate policy show: %v\n", err)
		return exitInvalid
	}
	var out []byte
	switch *output {
	case "yaml":
		out, err = p.MarshalYAML()
		if err == nil {
			head := fmt.Sprintf("# effective policy %q, %s\n", p.Name(), p.Digest())
			if len(p.Sources) > 0 {
				head += "# merged from: " + strings.Join(p.Sources, ", ") + "\n"
			} else {
				head += "# the built-in default policy\n"
			}
			head += "# protected host paths, which no policy can allow (hostPathMounts): " + strings.Join(policy.ProtectedHostPaths(), ", ") + "\n"
			out = append([]byte(head), out...)
		}
	case "json":
		out, err = json.MarshalIndent(p, "", "  ")
		out = append(out, '\n')
	default:
		fmt.Fprintf(stderr, "patchgate policy show: -o %q: want yaml or json\n", *output)
		return exitInvalid
	}
	if err != nil {
		fmt.Fprintf(stderr, "patchgate policy show: %v\n", err)
		return exitInvalid
	}
	if _, err := stdout.Write(out); err != nil {
		return exitInvalid
	}
	return exitOK
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
