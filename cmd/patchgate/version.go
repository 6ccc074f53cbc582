package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/internal/buildinfo"
)

// The version, commit and date are stamped at build time (internal/buildinfo).
func init() {
	register(newVersionCmd)
}

// versionInfo is `patchgate version -o json|yaml`.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
}

func versionText(i buildinfo.Info) string {
	return fmt.Sprintf("patchgate %s\ncommit: %s\ndate: %s\ngo: %s\n", i.Version, i.Commit, i.Date, i.GoVersion)
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the version, commit, build date and Go version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runVersion(output, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func runVersion(output string, stdout, stderr io.Writer) int {
	i := buildinfo.Get()
	if output == outputText {
		if _, err := io.WriteString(stdout, versionText(i)); err != nil {
			return fail(stderr, "patchgate version: %v\n", err)
		}
		return exitOK
	}
	return writeStructured(stdout, stderr, "patchgate version", output, versionInfo{i.Version, i.Commit, i.Date, i.GoVersion})
}
