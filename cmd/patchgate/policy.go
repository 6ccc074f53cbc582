package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
with the strict decoder the node service uses. Text: every problem on stderr as
file:line: message. -o json|yaml: one document on stdout with every path's
result and every problem as {file, line, key, message}, for CI annotations.
Exit 0 when all are valid, 2 otherwise.`,
		Args: minArgs(1, "policy file or directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(runPolicyValidate(args, nodeName, output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	nodeNameFlag(cmd.Flags(), &nodeName, hostname(), "node name: selects nodes/<name>.yaml in a policy directory", "this host's name")
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
	Path   string   `json:"path"`
	Valid  bool     `json:"valid"`
	Name   string   `json:"name,omitempty"`
	Digest string   `json:"digest,omitempty"`
	Files  []string `json:"files,omitempty"`
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
// problem. Exit 0 when all are valid, 2 otherwise.
func runPolicyValidate(paths []string, nodeName, output string, stdout, stderr io.Writer) int {
	code := exitOK
	res := validateResult{Valid: true, Policies: []validatedPolicy{}, Errors: []validateError{}}
	for _, path := range paths {
		p, err := policy.Load(path, nodeName)
		if err != nil {
			code = exitInvalid
			res.Valid = false
			res.Policies = append(res.Policies, validatedPolicy{Path: path})
			var ve *policy.ValidationError
			if errors.As(err, &ve) {
				for _, e := range ve.Errors {
					res.Errors = append(res.Errors, toValidateError(e))
					if output == outputText {
						fmt.Fprintln(stderr, e.Error())
					}
				}
			} else {
				res.Errors = append(res.Errors, validateError{File: path, Message: err.Error()})
				if output == outputText {
					fmt.Fprintf(stderr, "%s: %v\n", path, err)
				}
			}
			continue
		}
		res.Policies = append(res.Policies, validatedPolicy{Path: path, Valid: true, Name: p.Name(), Digest: p.Digest(), Files: p.Sources})
		if output == outputText {
			fmt.Fprintf(stdout, "%s: valid (policy %q, %s, %d %s)\n", path, p.Name(), p.Digest(), len(p.Sources), plural(len(p.Sources), "file", "files"))
		}
	}
	if output != outputText {
		if c := writeStructured(stdout, stderr, "patchgate policy validate", output, res); c != exitOK {
			return c
		}
	}
	return code
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
