//go:build e2e

// Package k8se2e installs patchgate's Helm chart on a real single-node Kubernetes on this
// machine (issue 14): etcd, the API server, the controller manager, the scheduler and a
// kubelet built from the Go module proxy (harness.EnsureKubernetes), on the harness's private
// containerd with NRI and required_plugins = ["patchgate"].
//
// The chart is installed as shipped, so its DaemonSet uses the node's real paths:
// /opt/patchgate/bin (the hook binaries runc runs), /run/patchgate, /var/lib/patchgate/policy,
// /var/log/patchgate and the NRI socket in /var/run/nri; the kubelet links logs into
// /var/log/containers. TestMain therefore runs the tests in a private mount namespace
// (unshare --mount --propagation private) where each of those directories is a bind mount of
// a private directory: containerd, runc, the hooks and the kubelet all run inside it and see
// the paths the chart names, and the machine's own directories are never written. Only
// missing mount points are created on the host (empty), and removed afterwards.
package k8se2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hostDirs are the node paths the chart and the kubelet write. /var/run/nri is /run/nri on
// Debian (/var/run is a link to /run).
var hostDirs = []string{"/opt/patchgate", "/run/patchgate", "/var/lib/patchgate", "/var/log/patchgate", "/run/nri", "/var/log/containers"}

// inNamespaceEnv marks the re-executed test binary that runs in the private namespace; its
// value is the private directory holding the bind mounts' sources.
const inNamespaceEnv = "PATCHGATE_K8SE2E_MOUNTS"

// privateRoot is where the node paths are bound from, inside the private namespace.
var privateRoot string

func TestMain(m *testing.M) {
	if dir := os.Getenv(inNamespaceEnv); dir != "" {
		privateRoot = dir
		if err := bindHostDirs(dir); err != nil {
			fmt.Fprintln(os.Stderr, "k8se2e:", err)
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	if os.Geteuid() != 0 {
		// Each test skips (or fails under CI=true) with the harness's message.
		os.Exit(m.Run())
	}
	os.Exit(reexec())
}

// reexec runs this test binary again in a private mount namespace, after creating the
// missing mount points, and removes those again (they stay empty on the host: every write
// went to the bind mounts).
func reexec() int {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8se2e: unshare(1) not found (util-linux); running without a private mount namespace is refused")
		return 1
	}
	dir, err := os.MkdirTemp("", "pgk8s-mounts-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8se2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	var created []string
	defer func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(created[i]) // only when still empty
		}
	}()
	for _, d := range hostDirs {
		made, err := mkdirAllRecord(d)
		created = append(created, made...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "k8se2e:", err)
			return 1
		}
	}
	args := append([]string{"--mount", "--propagation", "private", "--", os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), inNamespaceEnv+"="+dir)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "k8se2e:", err)
		return 1
	}
	return 0
}

// mkdirAllRecord is os.MkdirAll that returns the directories it created, parents first.
func mkdirAllRecord(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
		if d == "/" {
			break
		}
	}
	for i, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return missing[:i], err
		}
	}
	return missing, nil
}

// bindHostDirs binds a fresh private directory over each node path (in this namespace only).
func bindHostDirs(root string) error {
	for _, d := range hostDirs {
		src := filepath.Join(root, strings.ReplaceAll(strings.TrimPrefix(d, "/"), "/", "_"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(src, d, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", src, d, err)
		}
	}
	return nil
}
