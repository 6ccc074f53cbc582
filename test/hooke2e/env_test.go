//go:build e2e

// Package hooke2e runs `patchgate hook` under the real runtimes: runc with a
// busybox bundle, and podman with --hooks-dir pointing at the JSON that
// `patchgate hooks-config` prints. It needs root, runc, podman and
// busybox-static (scripts/install-deps.sh installs them). Under CI=true a
// missing prerequisite fails the test instead of skipping it.
package hooke2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var patchgateBin, hookBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "patchgate-hooke2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The runtime runs the hook as root from the bundle directory; the
	// binary must be reachable by an absolute path.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	patchgateBin = filepath.Join(dir, "patchgate")
	hookBin = filepath.Join(dir, "patchgate-hook")
	// patchgate-hook is the thin hook, built as `make build` builds it; it
	// runs `patchgate hook` from the patchgate binary next to it when the
	// service cannot answer.
	for bin, pkg := range map[string]string{patchgateBin: "./cmd/patchgate", hookBin: "./cmd/patchgate-hook"} {
		args := []string{"build", "-o", bin}
		if bin == hookBin {
			args = append(args, "-trimpath", "-ldflags=-s -w")
		}
		build := exec.Command("go", append(args, "github.com/patchgate/patchgate/"+pkg[2:])...)
		if bin == hookBin {
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// need fails (CI=true) or skips when a prerequisite is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing under CI=true: %s", what)
	}
	t.Skipf("prerequisite missing: %s", what)
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	need(t, os.Geteuid() == 0, "root")
	for _, tool := range tools {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" in PATH (apt-get install "+tool+")")
	}
	_, err := os.Stat("/bin/busybox")
	need(t, err == nil, "/bin/busybox (apt-get install busybox-static)")
}

// env is one private patchgate installation: policy, sockets, audit log,
// state file and status file under a temp directory.
type env struct {
	t          testing.TB
	dir        string
	policyDir  string
	socket     string
	auditSock  string
	auditLog   string
	stateFile  string
	statusFile string
	hostRoot   string
	podmanDir  string
	// patches and runtimeDirs are what the policy file was last written
	// with.
	patches     []string
	runtimeDirs []string
	allowed     []string
	// useHookBin makes runc bundles run patchgate-hook instead of patchgate.
	useHookBin bool
	// hookHostRoot is the hook's --host-root (default hostRoot).
	hookHostRoot string
	serve        *exec.Cmd
	serveLog     *bytes.Buffer
}

// policyYAML is the test policy: root is blocked, and the kernel must carry
// the live patch "kpatch_cve_2024_1086" fully transitioned. The %s are the
// required patches, the audit log path, the runtime's private state
// directories (podman's --root/--runroot, containerd's root and state: where
// its own /etc/hosts, /dev/shm, ... come from) and the allowed host paths.
const policyYAML = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: e2e-hook}
spec:
  defaultAction: enforce
  kernel:
    provider: sysfs
    requiredPatches: [%s]
    onUnknown: enforce
    action: enforce
  audit: {path: %s}
  hook: {onError: deny}
  rules:
    runAsRoot:           {action: enforce}
    privileged:          {action: enforce}
    capabilities:        {action: enforce}
    hostNamespaces:      {action: enforce}
    hostPathMounts:      {action: enforce, runtimeDirs: [%s], allowed: [%s]}
    procMount:           {action: enforce}
    privilegeEscalation: {action: warn}
    seccomp:             {action: off}
    apparmor:            {action: off}
`

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{
		t:          t,
		dir:        dir,
		policyDir:  filepath.Join(dir, "etc"),
		socket:     filepath.Join(dir, "run", "decision.sock"),
		auditSock:  filepath.Join(dir, "run", "audit.sock"),
		auditLog:   filepath.Join(dir, "log", "audit.log"),
		stateFile:  filepath.Join(dir, "run", "kernel-state.json"),
		statusFile: filepath.Join(dir, "run", "status.json"),
		hostRoot:   filepath.Join(dir, "host"),
	}
	for _, d := range []string{e.policyDir, filepath.Dir(e.socket), filepath.Dir(e.auditLog)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.setPolicy("kpatch_cve_2024_1086")
	e.setKernel(true)
	t.Cleanup(e.stopService)
	return e
}

// setPolicy writes the policy requiring the named live patches.
func (e *env) setPolicy(patches ...string) {
	e.patches = patches
	body := fmt.Sprintf(policyYAML, strings.Join(patches, ", "), e.auditLog, strings.Join(e.runtimeDirs, ", "), strings.Join(e.allowed, ", "))
	if err := os.WriteFile(filepath.Join(e.policyDir, "policy.yaml"), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// setRuntimeDirs rewrites the policy with the runtime's private state
// directories in hostPathMounts.runtimeDirs.
func (e *env) setRuntimeDirs(dirs ...string) {
	e.runtimeDirs = dirs
	e.setPolicy(e.patches...)
}

// setAllowed rewrites the policy with hostPathMounts.allowed entries
// (YAML flow mappings such as "{path: /srv, readOnly: true}").
func (e *env) setAllowed(entries ...string) {
	e.allowed = entries
	e.setPolicy(e.patches...)
}

// setKernel builds the fixture host root: a Debian 6.1 kernel with the live
// patch kpatch_cve_2024_1086 in force (patched) or still in transition.
func (e *env) setKernel(patched bool) {
	lp := filepath.Join(e.hostRoot, "sys", "kernel", "livepatch", "kpatch_cve_2024_1086")
	files := map[string]string{
		filepath.Join(e.hostRoot, "proc", "sys", "kernel", "osrelease"): "6.1.0-18-amd64\n",
		filepath.Join(e.hostRoot, "proc", "sys", "kernel", "tainted"):   "32768\n",
		filepath.Join(lp, "enabled"):                                    "1\n",
		filepath.Join(lp, "transition"):                                 "0\n",
	}
	if !patched {
		files[filepath.Join(lp, "transition")] = "1\n"
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	// The hook compares namespace inodes with <host-root>/proc/1/ns; give
	// the fixture the real host's.
	ns := filepath.Join(e.hostRoot, "proc", "1")
	if _, err := os.Lstat(filepath.Join(ns, "ns")); err != nil {
		if err := os.MkdirAll(ns, 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Symlink("/proc/1/ns", filepath.Join(ns, "ns")); err != nil {
			e.t.Fatal(err)
		}
	}
	_ = os.Remove(e.stateFile) // the hook must not take an old reading
}

// hookArgs are the `patchgate hook` flags that point it at this env.
func (e *env) hookArgs() []string {
	return []string{
		"--policy", e.policyDir, "--node-name", "e2e-node",
		"--socket", e.socket, "--audit-socket", e.auditSock,
		"--state-file", e.stateFile, "--host-root", e.hookRoot(),
	}
}

func (e *env) hookRoot() string {
	if e.hookHostRoot != "" {
		return e.hookHostRoot
	}
	return e.hostRoot
}

// hooksDir writes the hooks.d JSON generated by `patchgate hooks-config`.
func (e *env) hooksDir() string {
	d := filepath.Join(e.dir, "hooks.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"hooks-config", "--path", patchgateBin, "--"}, e.hookArgs()...)
	out, err := exec.Command(patchgateBin, args...).Output()
	if err != nil {
		e.t.Fatalf("patchgate hooks-config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d, "patchgate.json"), out, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// startService runs `patchgate serve` for this env and waits for its socket.
func (e *env) startService() {
	e.t.Helper()
	e.serveLog = &bytes.Buffer{}
	e.serve = exec.Command(patchgateBin, "serve",
		"--policy", e.policyDir, "--node-name", "e2e-node",
		"--socket", e.socket, "--audit-socket", e.auditSock, "--audit-log", e.auditLog,
		"--status-file", e.statusFile, "--state-file", e.stateFile, "--host-root", e.hostRoot,
		"--poll-interval", "200ms", "--kernel-interval", "1s")
	e.serve.Stdout, e.serve.Stderr = e.serveLog, e.serveLog
	if err := e.serve.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(e.statusFile); err == nil {
			if _, err := os.Stat(e.stateFile); err == nil {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.stopService()
	e.t.Fatalf("patchgate serve did not come up:\n%s", e.serveLog)
}

// stopService sends SIGTERM and waits; a clean shutdown exits 0.
func (e *env) stopService() {
	if e.serve == nil || e.serve.Process == nil {
		return
	}
	_ = e.serve.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.serve.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("patchgate serve after SIGTERM: %v\n%s", err, e.serveLog)
		}
	case <-time.After(10 * time.Second):
		_ = e.serve.Process.Kill()
		<-done
		e.t.Errorf("patchgate serve did not stop on SIGTERM\n%s", e.serveLog)
	}
	e.serve = nil
	for _, p := range []string{e.socket, e.auditSock} {
		if _, err := os.Lstat(p); err == nil {
			e.t.Errorf("%s left behind after a clean shutdown", p)
		}
	}
}

// auditRecord is the part of an audit line the tests check.
type auditRecord struct {
	UUID      string `json:"uuid"`
	Source    string `json:"source"`
	Action    string `json:"action"`
	Container struct {
		ID string `json:"id"`
	} `json:"container"`
	Violations []struct {
		Rule string `json:"rule"`
	} `json:"violations"`
}

// auditRecords reads the audit log (after the service took in the spool).
func (e *env) auditRecords() []auditRecord {
	e.t.Helper()
	f, err := os.Open(e.auditLog)
	if err != nil {
		e.t.Fatalf("audit log: %v", err)
	}
	defer func() { _ = f.Close() }()
	var out []auditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatalf("audit line does not parse: %v: %s", err, sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// spoolLines counts the records waiting in the audit spool.
func (e *env) spoolLines() int {
	data, err := os.ReadFile(filepath.Join(filepath.Dir(e.auditLog), "."+filepath.Base(e.auditLog)+".spool"))
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\n"))
}

// finish ends a run: with the service up, every record must have gone
// through it (nothing spooled); with it down, all of them (want) must be in
// the spool, which a service start then takes in.
func (e *env) finish(mode string, want int) {
	e.t.Helper()
	if mode == "service-up" {
		e.stopService()
		if n := e.spoolLines(); n != 0 {
			e.t.Errorf("service up, but %d records went to the spool", n)
		}
		return
	}
	if n := e.spoolLines(); n != want {
		e.t.Errorf("service down: %d records in the spool, want %d", n, want)
	}
	e.startService()
	e.stopService()
}

// expectAudited checks that every container id in ids has exactly one
// record, with source hook, and that no other record exists.
func (e *env) expectAudited(ids map[string]string) {
	e.t.Helper()
	recs := e.auditRecords()
	seen := map[string]int{}
	uuids := map[string]bool{}
	for _, r := range recs {
		seen[r.Container.ID]++
		if uuids[r.UUID] {
			e.t.Errorf("uuid %s appears twice", r.UUID)
		}
		uuids[r.UUID] = true
		if r.Source != "hook" {
			e.t.Errorf("record for %s has source %q", r.Container.ID, r.Source)
		}
	}
	for id, want := range ids {
		if seen[id] != 1 {
			e.t.Errorf("container %s (%s): %d audit records, want exactly 1", id, want, seen[id])
		}
	}
	if len(recs) != len(ids) {
		e.t.Errorf("%d audit records, want %d", len(recs), len(ids))
	} else {
		e.t.Logf("audit log %s: %d records, exactly one per refusal", e.auditLog, len(recs))
	}
}

// rootfs makes a one-file busybox root filesystem.
func rootfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sh", "true", "id", "sleep", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs a command with a timeout and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
