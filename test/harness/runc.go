package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// UsernsRuncVersion is the runc the harness builds for pods with a user namespace (Kubernetes
// hostUsers: false). Debian's runc 1.1.5 cannot idmap the rootfs mount, so containerd refuses
// such pods with "idmap mounts not supported"; runc 1.2 and later can.
const UsernsRuncVersion = "v1.3.5"

// runcModule is where `go install` finds runc (the Go module proxy serves it).
const runcModule = "github.com/opencontainers/runc"

// EnsureRunc returns the path of runc at version (for example UsernsRuncVersion), built with
// `go install -tags seccomp <runcModule>@<version>` into <cacheDir>/runc-<version>/runc when it
// is missing or was built by another go version. cacheDir defaults to DefaultCacheDir()/e2e,
// next to the containerd build. The build needs cgo and libseccomp-dev (scripts/install-deps.sh);
// without them it fails with ErrMissingPrerequisite. Concurrent callers serialise on the
// cache's lock file.
func EnsureRunc(ctx context.Context, cacheDir, version string, log io.Writer) (string, error) {
	if log == nil {
		log = io.Discard
	}
	if cacheDir == "" {
		cacheDir = filepath.Join(DefaultCacheDir(), "e2e")
	}
	if !strings.HasPrefix(version, "v") || strings.ContainsAny(version, "/ @") {
		return "", fmt.Errorf("harness: runc version %q: want a tag such as %s", version, UsernsRuncVersion)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("harness: the go command: %w", ErrMissingPrerequisite)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("harness: cache: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	dir := filepath.Join(cacheDir, "runc-"+version)
	bin := filepath.Join(dir, "runc")
	goVersion, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("harness: go env: %w", err)
	}
	stamp := "go install -tags seccomp " + runcModule + "@" + version + " " + strings.TrimSpace(string(goVersion))
	if data, err := os.ReadFile(filepath.Join(dir, ".stamp")); err == nil && strings.TrimSpace(string(data)) == stamp {
		if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
			return bin, nil
		}
	}
	if _, err := os.Stat("/usr/include/seccomp.h"); err != nil {
		return "", fmt.Errorf("harness: building runc %s needs libseccomp-dev (apt-get install libseccomp-dev): %w", version, ErrMissingPrerequisite)
	}
	fmt.Fprintf(log, "harness: building runc %s into %s\n", version, dir)
	tmp, err := os.MkdirTemp(cacheDir, "runc-"+version+".tmp-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goBin, "install", "-trimpath", "-tags", "seccomp", runcModule+"@"+version)
	cmd.Dir = tmp
	// A module-aware install outside any module: no go.work, no -mod flag from the caller.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=1", "GOWORK=off", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(log, &stderr)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("harness: go install runc %s: %w: %s", version, err, lastLines(stderr.String(), 20))
	}
	out, err := exec.CommandContext(ctx, filepath.Join(tmp, "runc"), "--version").Output()
	if err != nil || !strings.Contains(string(out), "runc version "+strings.TrimPrefix(version, "v")) {
		return "", fmt.Errorf("harness: the runc built from %s@%s reports %q (%v)", runcModule, version, out, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".stamp"), []byte(stamp+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return bin, nil
}
