package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// nowExample is the RFC 3339 example every --now error shows.
const nowExample = "2026-11-27T12:00:00Z"

// parseNow reads --now: an RFC 3339 time. The error says what was expected,
// never Go's reference layout.
func parseNow(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--now %q: want an RFC 3339 time, e.g. %s", s, nowExample)
	}
	return t, nil
}

// nodeNameFlag registers --node-name into v, which starts as this host's name
// (def). The help says where the default comes from (how), not the name of
// the host that printed it: docs/cli.md is that help, and the same on every
// machine.
func nodeNameFlag(fs *pflag.FlagSet, v *string, def, usage, how string) {
	fs.StringVar(v, "node-name", def, usage+" (default: "+how+")")
	fs.Lookup("node-name").DefValue = ""
}
