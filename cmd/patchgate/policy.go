package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(newPolicyCmd)
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "validate policy files, or show the effective policy",
		Args:  subcommandArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			if err := cmd.Help(); err != nil {
				return err
			}
			return exitCode(exitInvalid)
		},
	}
	cmd.AddCommand(newPolicyValidateCmd(), newPolicyShowCmd())
	return cmd
}

func newPolicyValidateCmd() *cobra.Command {
	var nodeName, output string
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "check policy files or directories; every problem as file:line: message (exit 0 valid, 2 not)",
		Long: `Check policy files or directories (policy.yaml + policy.d/ + nodes/<node>.yaml)
with the strict decoder the node service uses. A directory is checked as every
node reads it: the base (policy.yaml + policy.d/*.yaml), and the base with each
nodes/*.yaml overlay; --node-name checks that node's alone. An entry of
policy.d/ or nodes/ that patchgate never reads (*.yml, a dotfile, another
extension, a subdirectory) is a problem too: every node would ignore it.
Text: each policy checked on stdout, every problem on stderr as
file:line: message. -o json|yaml: one document on stdout with every policy
checked (path, node) and every problem as {file, line, key, message}, for CI
annotations. Exit 0 when all are valid, 2 otherwise.`,
		Args: minArgs(1, "policy file or directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(runPolicyValidate(args, nodeName, cmd.Flags().Changed("node-name"), output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	nodeNameFlag(cmd.Flags(), &nodeName, "", "node name: check a policy directory as this node reads it (policy.yaml, policy.d/, nodes/<name>.yaml)", "the base alone and with each nodes/*.yaml overlay")
	addOutputFlag(cmd, &output)
	return cmd
}

func newPolicyShowCmd() *cobra.Command {
	var pol nodePolicyFlags
	var output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "print the effective policy (every drop-in and overlay merged, every default filled in)",
		Long: `Print the effective policy: every drop-in and overlay merged, every default
filled in. Without --policy: the policy the node service enforces, else the
node's (` + policy.DefaultDir + `); --default-policy shows the built-in default.
-o text and yaml print YAML headed by where it was read; -o json prints the
policy alone.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runPolicyShow(&pol, cmd.Flags().Changed("node-name"), output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	pol.add(cmd, true)
	addOutputFlagDefault(cmd, &output, outputYAML)
	return cmd
}

// validateResult is `patchgate policy validate -o json|yaml`.
type validateResult struct {
	Valid    bool              `json:"valid"`
	Policies []validatedPolicy `json:"policies"`
	Errors   []validateError   `json:"errors"`
}

type validatedPolicy struct {
	Path string `json:"path"`
	// Node is the node whose overlay (nodes/<node>.yaml) was applied; ""
	// for the base alone, or a file.
	Node   string   `json:"node,omitempty"`
	Valid  bool     `json:"valid"`
	Name   string   `json:"name,omitempty"`
	Digest string   `json:"digest,omitempty"`
	Files  []string `json:"files,omitempty"`
}

// describe names what was checked: the path, and the node overlay.
func (v validatedPolicy) describe() string {
	if v.Node == "" {
		return v.Path
	}
	return v.Path + " for node " + v.Node
}

// validateError is one problem: the file and line to fix (line 0: the file
// as a whole), the policy key when the message names one, and the message.
type validateError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// policyKey matches the key path that the policy decoder puts before its
// messages ("spec.rules.runAsRoot.action: unknown action ...").
var policyKey = regexp.MustCompile(`^((?:apiVersion|kind|metadata|spec)(?:[.\[][^\s:]*)?): (.+)$`)

func toValidateError(e policy.PosError) validateError {
	ve := validateError{File: e.File, Line: e.Line, Message: e.Msg}
	if m := policyKey.FindStringSubmatch(e.Msg); m != nil {
		ve.Key, ve.Message = m[1], m[2]
	}
	return ve
}

// runPolicyValidate loads every path (file or directory) and lists every
// problem. A directory is checked as every node reads it: without
// --node-name the base (policy.yaml + policy.d/) and the base with each
// nodes/*.yaml overlay, with --node-name that node's alone; and any entry
// of policy.d/ or nodes/ the loader never reads is a problem, since a CI
// must not pass a file that every node then ignores. Exit 0 when all are
// valid, 2 otherwise.
func runPolicyValidate(paths []string, nodeName string, nodeNameSet bool, output string, stdout, stderr io.Writer) int {
	res := validateResult{Valid: true, Policies: []validatedPolicy{}, Errors: []validateError{}}
	for _, path := range paths {
		// A base error is reported once, not again for every overlay.
		seen := map[policy.PosError]bool{}
		report := func(e policy.PosError) {
			res.Valid = false
			if seen[e] {
				return
			}
			seen[e] = true
			res.Errors = append(res.Errors, toValidateError(e))
			if output == outputText {
				fmt.Fprintln(stderr, e.Error())
			}
		}
		nodes := []string{""} // a file has no overlay
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			unread, err := policy.Unread(path)
			if err != nil {
				report(policy.PosError{File: path, Msg: err.Error()})
			}
			for _, e := range unread {
				report(e)
			}
			if nodeNameSet {
				nodes = []string{nodeName}
			} else {
				overlays, err := policy.Overlays(path)
				if err != nil {
					report(policy.PosError{File: path, Msg: err.Error()})
				}
				nodes = append(nodes, overlays...)
			}
		}
		for _, node := range nodes {
			vp := validatedPolicy{Path: path, Node: node}
			p, err := policy.Load(path, node)
			var ve *policy.ValidationError
			switch {
			case errors.As(err, &ve):
				for _, e := range ve.Errors {
					report(e)
				}
			case err != nil:
				report(policy.PosError{File: path, Msg: err.Error()})
			default:
				vp.Valid, vp.Name, vp.Digest, vp.Files = true, p.Name(), p.Digest(), p.Sources
			}
			res.Policies = append(res.Policies, vp)
			if output == outputText && vp.Valid {
				fmt.Fprintf(stdout, "%s: valid (policy %q, %s, %d %s)\n", vp.describe(), p.Name(), p.Digest(), len(p.Sources), plural(len(p.Sources), "file", "files"))
			} else if output == outputText && len(nodes) > 1 {
				// Which overlays failed, when a base error is reported once.
				fmt.Fprintf(stderr, "%s: not valid\n", vp.describe())
			}
		}
	}
	if output != outputText {
		if c := writeStructured(stdout, stderr, "patchgate policy validate", output, res); c != exitOK {
			return c
		}
	}
	if !res.Valid {
		return exitInvalid
	}
	return exitOK
}

// runPolicyShow prints the effective merged policy with every default filled
// in.
func runPolicyShow(pol *nodePolicyFlags, nodeNameSet bool, output string, stdout, stderr io.Writer) int {
	p, src, err := pol.load(nodeNameSet)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate policy show: %v\n", err)
		return exitInvalid
	}
	var out []byte
	switch output {
	case outputYAML, outputText:
		out, err = p.MarshalYAML()
		if err == nil {
			head := fmt.Sprintf("# effective policy %q, %s\n# read from %s\n", p.Name(), p.Digest(), src)
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
