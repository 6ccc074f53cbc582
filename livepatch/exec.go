package livepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// How tools are found and run.
//
// A tool is looked up under the host root, in usr/bin, usr/sbin, bin, sbin
// and snap/bin (in that order), unless the policy's spec.kernel.tools maps
// its name to a path; that path is a path on the host, so it too is taken
// under the host root. The file must be a regular executable file, and it,
// every directory above it up to the host root, and every symlink on the
// way (followed under the host root) must be owned by root and writable by
// no one else (ErrInsecureTool otherwise; see resolveTrusted).
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
// tool sees itself inside a chroot, and its argv[0]) and the local path to
// execute: the checked final target, symlinks resolved under the host root.
func (e *Env) LookTool(tool string) (hostPath, localPath string, err error) {
	t, err := e.lookTool(tool)
	return t.host, t.local, err
}

// foundTool is a tool that passed the checks.
type foundTool struct {
	host     string // the path it was found at, on the host: argv[0]
	resolved string // the final target on the host, symlinks followed
	local    string // resolved under the host root, as patchgate sees it
}

func (e *Env) lookTool(tool string) (foundTool, error) {
	var candidates []string
	if p, ok := e.Tools[tool]; ok && p != "" {
		if !filepath.IsAbs(p) {
			return foundTool{}, fmt.Errorf("%w: spec.kernel.tools[%q] = %q is not an absolute path", ErrToolNotFound, tool, p)
		}
		candidates = []string{filepath.Clean(p)}
	} else {
		for _, d := range toolDirs {
			candidates = append(candidates, "/"+d+"/"+tool)
		}
	}
	for _, hp := range candidates {
		resolved, fi, err := e.resolveTrusted(hp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return foundTool{}, fmt.Errorf("%w: %s: %v", ErrInsecureTool, tool, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		return foundTool{host: hp, resolved: resolved, local: e.Path(resolved)}, nil
	}
	return foundTool{}, fmt.Errorf("%w: %s under %s (looked in %s)", ErrToolNotFound, tool, e.Path("/"), strings.Join(candidates, ", "))
}

// maxSymlinks bounds the symlinks followed for one tool, as the kernel's
// 40 (ELOOP).
const maxSymlinks = 40

// resolveTrusted follows the host path hp component by component under the
// host root, as exec inside chroot(hostRoot) would (an absolute symlink
// target starts again at the host root; ".." never leaves it), and checks
// everything it passes: the host root itself, every directory, every
// symlink and the final file. A tool runs as root, so whoever can replace
// it or any directory on its way runs code as root: each must be owned by
// root (or by patchgate's own user) and writable by no one else, with no
// group or other write bit (a sticky world-writable directory such as
// /tmp is refused too: its other users can put a file there). Symlinks must
// be owned by root (or patchgate's user). It returns the final host path
// and its FileInfo; an error wrapping fs.ErrNotExist when a component is
// missing.
func (e *Env) resolveTrusted(hp string) (string, os.FileInfo, error) {
	root := e.Path("/")
	fi, err := os.Lstat(root)
	if err != nil {
		return "", nil, err
	}
	if err := trustedEntry(fi, "/ (host root "+root+")"); err != nil {
		return "", nil, err
	}
	queue := splitPath(hp)
	cur := "/"
	hops := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err = os.Lstat(e.Path(next))
		if err != nil {
			return "", nil, err
		}
		if err := trustedEntry(fi, next); err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(queue) > 0 && !fi.IsDir() {
				return "", nil, fmt.Errorf("%s: %w", next, syscall.ENOTDIR)
			}
			cur = next
			continue
		}
		if hops++; hops > maxSymlinks {
			return "", nil, fmt.Errorf("%s: more than %d symlinks", hp, maxSymlinks)
		}
		target, err := os.Readlink(e.Path(next))
		if err != nil {
			return "", nil, err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		queue = append(splitPath(target), queue...)
	}
	if fi == nil || cur == "/" {
		return "", nil, fmt.Errorf("%s: %w", hp, fs.ErrNotExist)
	}
	return cur, fi, nil
}

func splitPath(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// trustedEntry refuses an entry not owned by root (or patchgate's own
// user), or, unless it is a symlink (whose mode means nothing), writable
// by group or others. what is its host path, for the message.
func trustedEntry(fi os.FileInfo, what string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read its owner", what)
	}
	if euid := uint32(os.Geteuid()); st.Uid != 0 && st.Uid != euid {
		return fmt.Errorf("%s is owned by uid %d, not root", what, st.Uid)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o002 != 0 && fi.Mode()&fs.ModeSticky != 0:
		return fmt.Errorf("%s is writable by others (mode %v, sticky: any user can put files there)", what, fi.Mode())
	case perm&0o022 == 0o022:
		return fmt.Errorf("%s is writable by group and others (mode %v)", what, fi.Mode())
	case perm&0o002 != 0:
		return fmt.Errorf("%s is writable by others (mode %v)", what, fi.Mode())
	case perm&0o020 != 0:
		return fmt.Errorf("%s is writable by group (mode %v)", what, fi.Mode())
	}
	return nil
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
	t, err := e.lookTool(tool)
	if err != nil {
		return ToolResult{ExitCode: -1}, err
	}
	return e.runPath(ctx, t, args, e.timeout(), nil)
}

// RunArgv runs an argv whose first element names a tool (a bare name, looked
// up like any tool) or an absolute host path.
func (e *Env) RunArgv(ctx context.Context, timeout time.Duration, argv []string) (ToolResult, error) {
	return e.runArgvFollowed(ctx, timeout, argv, nil)
}

// runArgvFollowed is RunArgv with a caller that follows the run (see
// runHooks).
func (e *Env) runArgvFollowed(ctx context.Context, timeout time.Duration, argv []string, h *runHooks) (ToolResult, error) {
	if len(argv) == 0 || argv[0] == "" {
		return ToolResult{ExitCode: -1}, fmt.Errorf("%w: empty command", ErrToolNotFound)
	}
	var t foundTool
	var err error
	if filepath.IsAbs(argv[0]) {
		sub := &Env{HostRoot: e.HostRoot, Tools: map[string]string{"cmd": argv[0]}}
		t, err = sub.lookTool("cmd")
	} else {
		t, err = e.lookTool(argv[0])
	}
	if err != nil {
		return ToolResult{ExitCode: -1}, err
	}
	return e.runPath(ctx, t, argv[1:], timeout, h)
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

// runHooks let a caller follow one run as it happens (the remediator: it
// streams an update's output and may stop it). Every field is optional.
type runHooks struct {
	// started is called with the process id, which is also its process
	// group id, as soon as the process runs.
	started func(pid int)
	// line is called with each line of output as the tool writes it (the
	// newline removed; a line longer than maxLine comes in pieces). stream
	// is "stdout" or "stderr", or "output" when both go to log. Calls never
	// overlap.
	line func(stream, text string)
	// log, when set, receives stdout and stderr instead of pipes: a tool
	// left running when patchgate exits keeps a place to write to (a pipe
	// with no reader kills a writer with SIGPIPE or an EPIPE error). The
	// output is then read back from the file; ToolResult.Stdout holds both
	// streams and Stderr is empty.
	log *os.File
	// exited is called once the process has exited and before it is
	// reaped: its process group id cannot be reused yet, so the rest of the
	// group can still be signalled safely.
	exited func(pid int)
}

// maxLine is the longest line handed to runHooks.line in one piece.
const maxLine = 4096

// runPath executes the checked final target of t (never a path exec would
// resolve on its own), with t's host path as argv[0]: multi-call programs
// such as /snap/bin/* (links to /usr/bin/snap) choose by it.
func (e *Env) runPath(ctx context.Context, t foundTool, args []string, timeout time.Duration, h *runHooks) (ToolResult, error) {
	if h == nil {
		h = &runHooks{}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hostPath := t.host
	name := t.local
	attr := &syscall.SysProcAttr{Setpgid: true}
	if e.chrooted() {
		name = t.resolved
		attr.Chroot = e.HostRoot
	}
	cmd := exec.CommandContext(ctx, name, args...)
	// exec.Command resolves name against our own filesystem; inside a
	// chroot the host path is what must be executed.
	cmd.Path = name
	cmd.Args[0] = hostPath
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
	var lines *lineSplitter
	if h.line != nil {
		lines = &lineSplitter{emit: h.line}
	}
	var follow *logFollower
	switch {
	case h.log != nil:
		cmd.Stdout, cmd.Stderr = h.log, h.log
		off, err := h.log.Seek(0, io.SeekEnd)
		if err != nil {
			return ToolResult{ExitCode: -1}, fmt.Errorf("%w: %s: output log: %v", ErrToolFailed, hostPath, err)
		}
		follow = &logFollower{f: h.log, off: off, to: lines.writer("output", &stdout)}
	default:
		cmd.Stdout, cmd.Stderr = lines.writer("stdout", &stdout), lines.writer("stderr", &stderr)
	}
	err := cmd.Start()
	if err == nil {
		if h.started != nil {
			h.started(cmd.Process.Pid)
		}
		if follow != nil {
			follow.start()
		}
		if h.exited != nil {
			waitExited(cmd.Process.Pid)
			h.exited(cmd.Process.Pid)
		}
		err = cmd.Wait()
		if follow != nil {
			follow.stop()
		}
	}
	lines.flush()
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

// waitExited blocks until process pid has exited, without reaping it
// (waitid with WNOWAIT), so that its pid and process group id stay taken.
// It returns at once on an error (the process is not our child any more).
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
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
