package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/proctest"
)

// The step-by-step fixture tools of livepatch/testdata/tools: they print
// their lines as they go and wait for the test (run/fixture-go) before they
// finish.
func installFixtureTool(t *testing.T, root, tool, rel string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "livepatch", "testdata", "tools", tool))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func fixtureGo(t *testing.T, root string) {
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run", "fixture-go"), nil, 0o644); err != nil {
		t.Error(err)
	}
}

func fixturePID(t *testing.T, root, name string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(string(readOrFail(t, filepath.Join(root, "run", name)))))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

const slowKpatchPolicy = "  kernel:\n    provider: kpatch\n    requiredPatches: [kpatch_4_18_0_513_9_1_2_1]\n"

// triggerWriter is a stderr that calls on for each complete line.
type triggerWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	part string
	on   func(line string)
}

func (w *triggerWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.part += string(p)
	for {
		i := strings.IndexByte(w.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.on(w.part[:i])
		w.part = w.part[i+1:]
	}
}

// check --apply shows the update as it happens on stderr, and stdout keeps
// only the report: the fixture kpatch finishes only once the test has read
// its second line there.
func TestCheckApplyStreamsProgress(t *testing.T) {
	root := copyHost(t, "rhel8-kpatch")
	installFixtureTool(t, root, "kpatch-slow", "usr/sbin/kpatch")
	pol := writePolicy(t, slowKpatchPolicy)
	errw := &triggerWriter{on: func(line string) {
		if strings.HasPrefix(line, "[kpatch] waiting (up to 15 seconds)") {
			fixtureGo(t, root)
		}
	}}
	var out bytes.Buffer
	code := dispatch([]string{"check", "--apply", "-o", "json", "--now", checkNow, "--status-file", "", "--policy", pol, "--host-root", root}, &out, errw)
	var rep checkReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || code != exitOK || rep.Remediation == nil || rep.Remediation.Status != "patched" {
		t.Fatalf("exit %d, report %v:\n%s\nstderr:\n%s", code, err, out.String(), errw.buf.String())
	}
	pid := fixturePID(t, root, "fixture-kpatch.pid")
	logPath := rep.Remediation.Log
	if filepath.Dir(logPath) != filepath.Join(root, "var/log/patchgate") {
		t.Errorf("run log %q", logPath)
	}
	got := errw.buf.String()
	last := 0
	for _, w := range []string{
		`patchgate: before: kernel 4.18.0-513.9.1.el8_9.x86_64, 1 live patch(es) in force: behind: kernelPatches (required live patch is not in force: "kpatch_4_18_0_513_9_1_2_1" (not loaded)`,
		"\npatchgate: running kpatch load kpatch_4_18_0_513_9_1_2_1 (pid " + strconv.Itoa(pid) + ", no shell); output also in " + logPath + "\n" +
			"[kpatch] loading patch module: /var/lib/kpatch/4.18.0-513.9.1.el8_9.x86_64/kpatch_4_18_0_513_9_1_2_1.ko\n" +
			"[kpatch] waiting (up to 15 seconds) for patch transition to complete...\n" +
			"[kpatch] transition complete (2 seconds)\n" +
			"patchgate: kpatch load kpatch_4_18_0_513_9_1_2_1 exited 0 after ",
		"\npatchgate: remediation patched after ",
		"\npatchgate: after: kernel 4.18.0-513.9.1.el8_9.x86_64, 2 live patch(es) in force: compliant\n",
	} {
		i := strings.Index(got[last:], w)
		if i < 0 {
			t.Fatalf("stderr lacks, in order, %q:\n%s", w, got)
		}
		last += i + len(w)
	}
	if strings.Contains(out.String(), "[kpatch]") || strings.Contains(out.String(), "patchgate: ") {
		t.Errorf("progress on stdout:\n%s", out.String())
	}
	// -q: no progress at all.
	root = copyHost(t, "rhel8-kpatch")
	installFixtureTool(t, root, "kpatch-slow", "usr/sbin/kpatch")
	fixtureGo(t, root)
	code, out2, errs := runCmd(t, "check", "--apply", "-q", "--now", checkNow, "--status-file", "", "--policy", pol, "--host-root", root)
	if code != exitOK || errs != "" || strings.Count(out2, "\n") != 1 {
		t.Errorf("-q: exit %d stdout %q stderr %q", code, out2, errs)
	}
}

// TestCheckChild is patchgate itself, in a child process, when
// PATCHGATE_CHECK_CHILD holds its arguments (a JSON list): the signal
// tests send it real signals.
func TestCheckChild(t *testing.T) {
	env := os.Getenv("PATCHGATE_CHECK_CHILD")
	if env == "" {
		t.Skip("only a helper: patchgate run in a child process by the signal tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(env), &args); err != nil {
		os.Exit(99)
	}
	os.Exit(dispatch(args, os.Stdout, os.Stderr))
}

// runSignalled runs patchgate with args in a child process and calls on
// with each line it writes to stderr and the child; it returns the exit
// code, stdout and stderr.
func runSignalled(t *testing.T, on func(line string, p *os.Process), args ...string) (int, string, string) {
	t.Helper()
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckChild$")
	cmd.Env = append(os.Environ(), "PATCHGATE_CHECK_CHILD="+string(enc))
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errs strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		errs.WriteString(sc.Text() + "\n")
		on(sc.Text(), cmd.Process)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errs.String()
}

// killGroup kills what is left of process group pgid after a failed test.
func killGroup(t *testing.T, pgid int) {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Error(err)
	}
}

func sendSignal(t *testing.T, p *os.Process, sig syscall.Signal) {
	if err := p.Signal(sig); err != nil {
		t.Error(err)
	}
}

// Ctrl-C while kpatch load runs: patchgate says that kpatch goes on in the
// background, with its pid and log, prints the report, and exits 130; kpatch
// outlives it and completes the update.
func TestCheckApplySIGINTLeavesKpatchRunning(t *testing.T) {
	root := copyHost(t, "rhel8-kpatch")
	installFixtureTool(t, root, "kpatch-slow", "usr/sbin/kpatch")
	pol := writePolicy(t, slowKpatchPolicy)
	code, out, errs := runSignalled(t, func(line string, p *os.Process) {
		if strings.HasPrefix(line, "[kpatch] waiting (up to 15 seconds)") {
			sendSignal(t, p, syscall.SIGINT)
		}
	}, "check", "--apply", "-o", "json", "--now", checkNow, "--status-file", "", "--policy", pol, "--host-root", root)
	pid := fixturePID(t, root, "fixture-kpatch.pid")
	t.Cleanup(func() { killGroup(t, pid) })
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitSIGINT || rep.Remediation == nil {
		t.Fatalf("exit %d, report %v:\n%s\nstderr:\n%s", code, err, out, errs)
	}
	o := rep.Remediation
	if o.Status != "running" || o.Interrupted != "SIGINT" || o.PID != pid || !proctest.Alive(pid) {
		t.Fatalf("remediation %+v; kpatch (pid %d) alive %v\nstderr:\n%s", o, pid, proctest.Alive(pid), errs)
	}
	for _, w := range []string{
		"patchgate: interrupted by SIGINT: kpatch load kpatch_4_18_0_513_9_1_2_1 (pid " + strconv.Itoa(pid) + ") keeps running in the background: killing kpatch load cannot abort the kernel's live-patch transition",
		"tail -f " + o.Log,
		"\npatchgate: after: kernel 4.18.0-513.9.1.el8_9.x86_64, 1 live patch(es) in force: behind",
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
	// kpatch goes on and completes the update; its output goes on to the log.
	fixtureGo(t, root)
	if !proctest.WaitGone(time.Minute, func() bool { return proctest.Alive(pid) }) {
		t.Fatal("kpatch never finished")
	}
	if b := readOrFail(t, o.Log); !strings.HasSuffix(string(b), "transition complete (2 seconds)\n") {
		t.Errorf("run log:\n%s", b)
	}
	if code, rep := checkJSON(t, "--policy", pol, "--host-root", root, "--status-file", ""); code != exitOK || !rep.Compliant {
		t.Errorf("after kpatch finished: exit %d %+v", code, rep.Violations)
	}
}

// SIGTERM (or Ctrl-C twice, when the command ignores the first) while the
// site's own command runs: patchgate stops it, kills what is left of its
// process group, reports and exits 143 (130); nothing is left running.
func TestCheckApplySignalStopsSiteCommand(t *testing.T) {
	for _, c := range []struct {
		name   string
		argv   string
		sig    syscall.Signal
		code   int
		killed bool
	}{
		{"SIGTERM", "[/usr/local/sbin/site-update]", syscall.SIGTERM, exitSIGTERM, false},
		{"SIGINT", "[/usr/local/sbin/site-update, trap]", syscall.SIGINT, exitSIGINT, true},
	} {
		root := copyHost(t, "debian12-nolivepatch")
		installFixtureTool(t, root, "site-update", "usr/local/sbin/site-update")
		pol := writePolicy(t, "  kernel:\n    requiredPatches: [livepatch_fix]\n  remediation: {command: "+c.argv+"}\n")
		code, out, errs := runSignalled(t, func(line string, p *os.Process) {
			switch {
			case strings.HasPrefix(line, "[site-update] site-update: downloading"):
				sendSignal(t, p, c.sig)
			case strings.HasPrefix(line, "[site-update] site-update: SIGINT ignored"):
				sendSignal(t, p, c.sig)
			}
		}, "check", "--apply", "-o", "json", "--now", checkNow, "--status-file", "", "--policy", pol, "--host-root", root)
		pid, helper := fixturePID(t, root, "fixture-update.pid"), fixturePID(t, root, "fixture-helper.pid")
		var rep checkReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil || code != c.code || rep.Remediation == nil {
			t.Fatalf("%s: exit %d, report %v:\n%s\nstderr:\n%s", c.name, code, err, out, errs)
		}
		if o := rep.Remediation; o.Status != "failed" || o.Interrupted != c.name || !strings.Contains(o.Reason, "stopped on "+c.name) || rep.Compliant {
			t.Errorf("%s: remediation %+v", c.name, o)
		}
		proctest.WaitGone(time.Minute, func() bool { return len(proctest.GroupMembers(pid)) > 0 })
		if proctest.Alive(pid) || proctest.Alive(helper) || len(proctest.GroupMembers(pid)) > 0 {
			t.Errorf("%s: left running: command %v helper %v group %v", c.name, proctest.Alive(pid), proctest.Alive(helper), proctest.GroupMembers(pid))
			killGroup(t, pid)
		}
		if !strings.Contains(errs, "patchgate: "+c.name+": stopping /usr/local/sbin/site-update") ||
			strings.Contains(errs, c.name+" again: killing") != c.killed {
			t.Errorf("%s: stderr:\n%s", c.name, errs)
		}
	}
}
