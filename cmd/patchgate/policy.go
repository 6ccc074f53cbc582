package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	var nodeName string
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "check policy files or directories; every problem as file:line: message (exit 0 valid, 2 not)",
		Args:  minArgs(1, "policy file or directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return codeErr(runPolicyValidate(args, nodeName, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&nodeName, "node-name", hostname(), "node name: selects nodes/<name>.yaml in a policy directory")
	return cmd
}

func newPolicyShowCmd() *cobra.Command {
	var path, nodeName, output string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "print the effective policy (every drop-in and overlay merged, every default filled in)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runPolicyShow(path, nodeName, output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&path, "policy", "", "policy file or directory; empty: the built-in default policy")
	cmd.Flags().StringVar(&nodeName, "node-name", hostname(), "node name: selects nodes/<name>.yaml in a policy directory")
	addOutputFlagDefault(cmd, &output, outputYAML)
	return cmd
}

// runPolicyValidate loads every path (file or directory) and lists every
// problem as file:line: message. Exit 0 when all are valid, 2 otherwise.
func runPolicyValidate(paths []string, nodeName string, stdout, stderr io.Writer) int {
	code := exitOK
	for _, path := range paths {
		p, err := policy.Load(path, nodeName)
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
func runPolicyShow(path, nodeName, output string, stdout, stderr io.Writer) int {
	p, err := loadPolicy(path, nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate policy show: %v\n", err)
		return exitInvalid
	}
	var out []byte
	switch output {
	case outputYAML, outputText:
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
