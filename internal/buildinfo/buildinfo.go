// Package buildinfo is patchgate's version, commit and build date.
//
// `make build` and `make release` stamp them with the linker:
//
//	-X github.com/patchgate/patchgate/internal/buildinfo.version=v0.2.0
//	-X github.com/patchgate/patchgate/internal/buildinfo.commit=<git rev-parse HEAD>
//	-X github.com/patchgate/patchgate/internal/buildinfo.date=<commit time, RFC 3339 UTC>
//
// A binary built without them (go build, go install, go run) falls back to
// what the Go toolchain recorded (runtime/debug.ReadBuildInfo): the module
// version, and vcs.revision and vcs.time when VCS stamping was on (it is off
// under GOFLAGS=-buildvcs=false). What neither gives is "unknown".
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X; empty when not stamped.
var (
	version string
	commit  string
	date    string
)

// Unknown is a field neither the linker nor the Go toolchain recorded.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	Version   string // v0.2.0, v0.2.0-3-gabc1234, or "dev"
	Commit    string // full commit hash, "-dirty" appended for a modified tree
	Date      string // RFC 3339 (the commit's time)
	GoVersion string // runtime.Version()
}

// Get returns the stamped values, each missing one from the Go toolchain's
// build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
}

func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		var rev, at string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if info.Commit == "" && rev != "" {
			info.Commit = rev
			if modified {
				info.Commit += "-dirty"
			}
		}
		if info.Date == "" {
			info.Date = at
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	if info.Date == "" {
		info.Date = Unknown
	}
	return info
}
