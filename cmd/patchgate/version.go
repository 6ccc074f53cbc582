package main

import (
	"fmt"
	"io"

	"github.com/patchgate/patchgate/internal/buildinfo"
)

// The version, commit and date are stamped at build time (internal/buildinfo).
func init() {
	register(command{name: "version", summary: "print the version, commit, build date and Go version", run: func(_ []string, stdout, _ io.Writer) int {
		i := buildinfo.Get()
		fmt.Fprintf(stdout, "patchgate %s\ncommit: %s\ndate: %s\ngo: %s\n", i.Version, i.Commit, i.Date, i.GoVersion)
		return exitOK
	}})
}
