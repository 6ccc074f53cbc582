package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// The -o vocabulary of every command whose output is structured: text for
// people, json and yaml for programs (the same document in either).
const (
	outputText = "text"
	outputJSON = "json"
	outputYAML = "yaml"
)

var outputFormats = []string{outputText, outputJSON, outputYAML}

// addOutputFlag adds -o/--output (text, json or yaml; default text), checked
// before the command runs and completed by the shell.
func addOutputFlag(cmd *cobra.Command, output *string) {
	addOutputFlagDefault(cmd, output, outputText)
}

func addOutputFlagDefault(cmd *cobra.Command, output *string, def string) {
	cmd.Flags().StringVarP(output, "output", "o", def, "output format: "+strings.Join(outputFormats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if !slices.Contains(outputFormats, *output) {
			return usageError{cmd: c, err: fmt.Errorf("-o %q: want one of %s", *output, strings.Join(outputFormats, ", "))}
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// writeStructured writes v as JSON (indented) or YAML; what encodes JSON
// decides the field names of both.
func writeStructured(stdout, stderr io.Writer, who, output string, v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil && output == outputYAML {
		b, err = yaml.JSONToYAML(b)
	} else if err == nil {
		b = append(b, '\n')
	}
	if err != nil {
		return fail(stderr, "%s: %v\n", who, err)
	}
	if _, err := stdout.Write(b); err != nil {
		return fail(stderr, "%s: writing the output: %v\n", who, err)
	}
	return exitOK
}
