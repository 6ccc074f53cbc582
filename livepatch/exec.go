package livepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// How tools are found and run.
//
// A tool is looked up under the host root, in usr/bin, usr/sbin, bin, sbin
// and snap/bin (in that order), unless the policy's spec.kernel.tools maps
// its name to a path; that path is a path on the host, so it too is taken
// under the host root. The file must be a regular executable file that is
// not writable by group or others (ErrInsecureTool otherwise).
//
// With host root "/" the tool runs as is. With another host root there are
// two ways, chosen by the Chroot option:
//
//   - direct (default): the tool is executed at <hostRoot>/usr/bin/<tool> in
//     patchgate's own mount namespace. This is what the fixture trees in
//     testdata/ use: their recorded tools are small scripts.
//   - chroot: the tool is executed inside chroot(<hostRoot>), so it finds the
//     host's interpreter, libraries, /var/lib/kpatch, /etc/sysconfig/kcare and
//     so on. This is how a DaemonSet runs the node's tools: mount the host's
//     "/" at /host (hostPath, which Kubernetes binds recursively, so /host/proc
//     and /host/sys come along), run privileged (chroot needs CAP_SYS_CHROOT,
//     and the tools themselves need root), and pass --host-root /host
//     --tools-chroot. The sysfs provider reads /host/sys/kernel/livepatch
//     directly and needs no chroot.
//
// Every run has a timeout (Env.Timeout, default 30s, bounded by the caller's
// context), a minimal environment (PATH and LC_ALL=C), its own process group
// that is killed as a whole on timeout, and at most 4 MiB of output.

// toolDirs are searched in order under the host root.
var toolDirs = []string{"usr/bin", "usr/sbin", "bin", "sbin", "snap/bin"}

const (
	defaultToolTimeout = 30 * time.Second
	maxToolOutput      = 4 << 20
)

// Env is what providers read from: the host root and how tools run.
type Env struct {
	// HostRoot is the host's "/" as seen by patchgate.
	HostRoot string
	// Tools maps a tool name to a host path (spec.kernel.tools).
	Tools map[string]string
	// Timeout bounds one tool run.
	Timeout time.Duration
	// Chroot runs tools inside chroot(HostRoot) when HostRoot is not "/".
	Chroot bool
}

// Path returns the host path p under the host root.
func (e *Env) Path(p string) string {
	root := e.HostRoot
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.Clean("/"+p))
}

// ReadFile reads the host file p under the host root.
func (e *Env) ReadFile(p string) ([]byte, error) {
	return os.ReadFile(e.Path(p))
}

// LookTool finds tool under the host root. It returns the host path (as the
// tool sees itself inside a chroot) and the local path to execute.
func (e *Env) LookTool(tool string) (hostPath, localPath string, err error) {
	var candidates []string
	if p, ok := e.Tools[tool]; ok && p != "" {
		if !filepath.IsAbs(p) {
			return "", "", fmt.Errorf("%w: spec.kernel.tools[%q] = %q is not an absolute path", ErrToolNotFound, tool, p)
		}
		candidates = []string{filepath.Clean(p)}
	} else {
		for _, d := range toolDirs {
			candidates = append(candidates, "/"+d+"/"+tool)
		}
	}
	for _, hp := range candidates {
		lp := e.Path(hp)
		fi, err := os.Stat(lp)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", "", fmt.Errorf("%w: %s: %v", ErrToolNotFound, lp, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return "", "", fmt.Errorf("%w: %s is writable by group or others (mode %v)", ErrInsecureTool, lp, fi.Mode().Perm())
		}
		return hp, lp, nil
	}
	return "", "", fmt.Errorf("%w: %s under %s (looked in %s)", ErrToolNotFound, tool, e.Path("/"), strings.Join(candidates, ", "))
}

// HasTool reports whether tool is installed.
func (e *Env) HasTool(tool string) bool {
	_, _, err := e.LookTool(tool)
	return err == nil || errors.Is(err, ErrInsecureTool)
}

// ToolResult is one tool run.
type ToolResult struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Run runs tool with args and waits for it. A non-zero exit is not an error
// here (some tools report through it); a tool that cannot start, is killed
// or times out is ErrToolFailed.
func (e *Env) Run(ctx context.Context, tool string, args ...string) (ToolResult, error) {
	hostPath, localPath, err := e.LookTool(tool)
	if err != nil {
		return ToolResult{ExitCode: -1}, err
	}
	return e.runPath(ctx, hostPath, localPath, args, e.timeout())
}

// RunArgv runs an argv whose first element names a tool (a bare name, looked
// up like any tool) or an absolute host path.
func (e *Env) RunArgv(ctx context.Context, timeout time.Duration, argv []string) (ToolResult, error) {
	if len(argv) == 0 || argv[0] == "" {
		return ToolResult{ExitCode: -1}, fmt.Errorf("%w: empty command", ErrToolNotFound)
	}
	var hostPath, localPath string
	var err error
	if filepath.IsAbs(argv[0]) {
		sub := &Env{HostRoot: e.HostRoot, Tools: map[string]string{"cmd": argv[0]}}
		hostPath, localPath, err = sub.LookTool("cmd")
	} else {
		hostPath, localPath, err = e.LookTool(argv[0])
	}
	if err != nil {
		return ToolResult{ExitCode: -1}, err
	}
	return e.runPath(ctx, hostPath, localPath, argv[1:], timeout)
}

func (e *Env) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return defaultToolTimeout
}

func (e *Env) chrooted() bool {
	return e.Chroot && e.HostRoot != "" && filepath.Clean(e.HostRoot) != "/"
}

func (e *Env) runPath(ctx context.Context, hostPath, localPath string, args []string, timeout time.Duration) (ToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name := localPath
	attr := &syscall.SysProcAttr{Setpgid: true}
	if e.chrooted() {
		name = hostPath
		attr.Chroot = e.HostRoot
	}
	cmd := exec.CommandContext(ctx, name, args...)
	// exec.Command resolves name against our own filesystem; inside a
	// chroot the host path is what must be executed.
	cmd.Path = name
	cmd.SysProcAttr = attr
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin", "LC_ALL=C"}
	cmd.Cancel = func() error {
		// Kill the whole process group: scripts leave children behind.
		if cmd.Process == nil {
			return nil
		}
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxToolOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ToolResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	argv := strings.Join(append([]string{hostPath}, args...), " ")
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return res, fmt.Errorf("%w: %s: timed out after %v", ErrToolFailed, argv, timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%w: %s: %v", ErrToolFailed, argv, ctx.Err())
	case stdout.truncated:
		return res, fmt.Errorf("%w: %s: more than %d bytes of output", ErrToolFailed, argv, maxToolOutput)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, fmt.Errorf("%w: %s: %v", ErrToolFailed, argv, err)
	}
	if res.ExitCode < 0 {
		return res, fmt.Errorf("%w: %s: killed by a signal", ErrToolFailed, argv)
	}
	return res, nil
}

// failure describes a tool run that exited non-zero, with its message
// (stderr, else stdout) on one line.
func failure(tool string, args []string, r ToolResult) error {
	msg := strings.TrimSpace(string(r.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(r.Stdout))
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg == "" {
		msg = "no message"
	}
	return fmt.Errorf("%w: %s exited %d: %s", ErrToolFailed, strings.Join(append([]string{tool}, args...), " "), r.ExitCode, msg)
}

// limitedBuffer keeps at most max bytes. It must not embed bytes.Buffer:
// io.Copy would then use the promoted ReadFrom and bypass the limit.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }
