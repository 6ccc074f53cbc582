package buildinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveStampedWins(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "ffff"}, {Key: "vcs.time", Value: "2000-01-01T00:00:00Z"},
	}}
	got := resolve("v0.2.0", "abc123", "2026-12-02T13:00:00Z", bi)
	want := Info{Version: "v0.2.0", Commit: "abc123", Date: "2026-12-02T13:00:00Z", GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestResolveFallback(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := resolve("", "", "", bi)
	want := Info{Version: "dev", Commit: "0123abcd-dirty", Date: "2026-11-30T10:00:00Z", GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// go install module@v0.2.0: the module version, no VCS settings.
	got = resolve("", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}})
	want = Info{Version: "v0.2.0", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.8"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := resolve("", "", "", nil); got.Version != "dev" || got.Commit != Unknown || got.GoVersion == "" {
		t.Fatalf("no build info: %+v", got)
	}
}

// The linker really sets the variables under their documented names (the
// Makefile's -X flags): a renamed variable would silently stay empty.
func TestLinkerStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	const pkg = "github.com/patchgate/patchgate/internal/buildinfo"
	bin := filepath.Join(dir, "stamped")
	ld := "-X " + pkg + ".version=v1.2.3 -X " + pkg + ".commit=c0ffee -X " + pkg + ".date=2026-12-02T00:00:00Z"
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", ld, "./testdata/stamp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "v1.2.3 c0ffee 2026-12-02T00:00:00Z" {
		t.Fatalf("stamped binary printed %q", got)
	}
}
