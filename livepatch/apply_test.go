package livepatch

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/internal/proctest"
	"github.com/patchgate/patchgate/policy"
)

// installTool copies a fixture tool from testdata/tools to host path rel
// in the fixture tree root.
func installTool(t *testing.T, root, tool, rel string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tools", tool))
	if err != nil {
		t.Fatal(err)
	}
	writeScript(t, root, rel, string(b))
}

// letGo lets a fixture tool waiting for run/fixture-go go on.
func letGo(t *testing.T, root string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "run", "fixture-go"), nil, 0o644); err != nil {
		t.Error(err)
	}
}

// readPID reads a pid a fixture tool wrote to run/<name>.
func readPID(t *testing.T, root, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "run", name))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits (at most a minute) for pid to end.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if !proctest.WaitGone(time.Minute, func() bool { return proctest.Alive(pid) }) {
		t.Fatalf("process %d still runs", pid)
	}
}

// killGroup kills what is left of process group pgid after a failed test.
func killGroup(t *testing.T, pgid int) {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Error(err)
	}
}

// events collects a run's progress; on, when set, is called with each.
type events struct {
	mu  sync.Mutex
	all []Event
	on  func(Event)
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	on := e.on
	e.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (e *events) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if s := progressLine(ev); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// kpatchSlow sets up rhel8-kpatch with the step-by-step kpatch.
func kpatchSlow(t *testing.T, ev *events, opts ...RemediatorOption) (string, *Monitor, *Remediator) {
	t.Helper()
	root := copyTree(t, "rhel8-kpatch")
	installTool(t, root, "kpatch-slow", "usr/sbin/kpatch")
	const mod = "kpatch_4_18_0_513_9_1_2_1"
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	rem := must(NewRemediator(r, m, append([]RemediatorOption{WithModules([]string{mod}), WithBehind(behindWithout(mod)),
		WithBackoff(0), WithRemediationTimeout(2 * time.Minute), WithProgress(ev.add)}, opts...)...))
	return root, m, rem
}

// The tool's lines arrive while it runs: the fixture kpatch goes on only
// once the test has seen its second line, so a run whose output came only
// at the end would hang until the fixture gives up and fail.
func TestApplyStreamsOutputWhileTheToolRuns(t *testing.T) {
	for _, runLog := range []bool{false, true} {
		ev := &events{}
		var opts []RemediatorOption
		if runLog {
			opts = append(opts, WithRunLog(DefaultRunLogDir))
		}
		root, m, rem := kpatchSlow(t, ev, opts...)
		ev.on = func(e Event) {
			if e.Kind == EventOutput && strings.HasPrefix(e.Line, "waiting (up to 15 seconds)") {
				letGo(t, root)
			}
		}
		o := rem.Apply(nil)
		if o.Status != StatusPatched || !patchInForce(m.Snapshot(), "kpatch_4_18_0_513_9_1_2_1") {
			t.Fatalf("run log %v: %+v", runLog, o)
		}
		got := strings.Join(ev.lines(), "\n")
		want := []string{
			"patchgate: running kpatch load kpatch_4_18_0_513_9_1_2_1 (pid ",
			"[kpatch] loading patch module: /var/lib/kpatch/4.18.0-513.9.1.el8_9.x86_64/kpatch_4_18_0_513_9_1_2_1.ko\n" +
				"[kpatch] waiting (up to 15 seconds) for patch transition to complete...\n" +
				"[kpatch] transition complete (2 seconds)\n" +
				"patchgate: kpatch load kpatch_4_18_0_513_9_1_2_1 exited 0 after ",
			"patchgate: remediation patched after ",
		}
		last := 0
		for _, w := range want {
			i := strings.Index(got[last:], w)
			if i < 0 {
				t.Fatalf("run log %v: progress lacks %q after offset %d:\n%s", runLog, w, last, got)
			}
			last += i + len(w)
		}
		if !runLog {
			if o.Log != "" || strings.Contains(got, "output also in") {
				t.Errorf("a log without WithRunLog: %q", o.Log)
			}
			continue
		}
		// The run log holds the same output, root-only, under the host root.
		if filepath.Dir(o.Log) != filepath.Join(root, "var/log/patchgate") || !strings.Contains(got, "output also in "+o.Log) {
			t.Fatalf("log %q", o.Log)
		}
		b := readOrFail(t, o.Log)
		if want := readOrFail(t, filepath.Join(root, "recorded/kpatch-load.out")); !bytes.Equal(b, want) {
			t.Errorf("run log:\n%s\nwant the tool's output\n%s", b, want)
		}
		if fi, err := os.Stat(o.Log); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("run log mode: %v %v", fi.Mode(), err)
		}
	}
}

// When the command returns with the patch still in transition, the run
// says what it waits for: the patch's sysfs transition file.
func TestApplyShowsTheTransitionWait(t *testing.T) {
	root := copyTree(t, "debian12-nolivepatch")
	installTool(t, root, "site-update", "usr/local/sbin/site-update")
	if err := os.MkdirAll(filepath.Join(root, "sys/kernel/livepatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	letGoNow(t, root)
	ev := &events{}
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	rem := must(NewRemediator(r, m, WithCommand([]string{"/usr/local/sbin/site-update"}), WithBehind(behindWithout("livepatch_fix")),
		WithBackoff(0), WithProgress(ev.add)))
	if o := rem.Apply(nil); o.Status != StatusPatched {
		t.Fatalf("%+v\n%s", o, strings.Join(ev.lines(), "\n"))
	}
	got := strings.Join(ev.lines(), "\n")
	for _, w := range []string{
		"[site-update] site-update: livepatch_fix loaded, transition running\npatchgate: /usr/local/sbin/site-update exited 0 after ",
		"patchgate: waiting up to ",
		" for the kernel to finish the live-patch transition of livepatch_fix (" + filepath.Join(root, "sys/kernel/livepatch/livepatch_fix/transition") + " is 1) (re-read every 200ms)",
		"patchgate: transition finished after ",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("progress lacks %q:\n%s", w, got)
		}
	}
}

func letGoNow(t *testing.T, root string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	letGo(t, root)
}

// The node service's remediation logs each output line at info, prefixed
// with the tool's name, instead of dropping it.
func TestRemediationLogsOutputLines(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{DisableTimestamp: true})
	root := copyTree(t, "ubuntu20-kernelcare")
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	rem := must(NewRemediator(r, m, WithBehind(func(k *policy.KernelState) bool { return k.UpdatesPending == nil || *k.UpdatesPending }),
		WithRemediationLogger(l)))
	if o := rem.Ensure(context.Background(), time.Minute); o.Status != StatusPatched {
		t.Fatalf("%+v", o)
	}
	rec := readOrFail(t, filepath.Join(root, "recorded/kcarectl-update.out"))
	for _, line := range strings.Split(strings.TrimSpace(string(rec)), "\n") {
		want := `"level":"info","msg":"[kcarectl] ` + line + `","stream":"stdout"}`
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
	if !strings.Contains(buf.String(), `"msg":"running kcarectl --update","pid":`) {
		t.Errorf("log lacks the command and its pid:\n%s", buf.String())
	}
}

// Interrupted while kpatch load runs: kpatch is left running in its own
// process group, with its pid and log; it then finishes the update.
func TestApplyInterruptLeavesKpatchRunning(t *testing.T) {
	ev := &events{}
	root, m, rem := kpatchSlow(t, ev, WithRunLog(DefaultRunLogDir))
	sigs := make(chan os.Signal, 1)
	ev.on = func(e Event) {
		if e.Kind == EventOutput && strings.HasPrefix(e.Line, "waiting (up to 15 seconds)") {
			sigs <- syscall.SIGINT
		}
	}
	o := rem.Apply(sigs)
	pid := readPID(t, root, "fixture-kpatch.pid")
	t.Cleanup(func() { killGroup(t, pid) })
	if o.Status != StatusRunning || o.Interrupted != "SIGINT" || o.PID != pid || !proctest.Alive(pid) || o.Log == "" {
		t.Fatalf("outcome %+v (kpatch pid %d alive %v)", o, pid, proctest.Alive(pid))
	}
	if !strings.Contains(o.Reason, "kpatch load kpatch_4_18_0_513_9_1_2_1 (pid "+strconv.Itoa(pid)+") keeps running in the background") {
		t.Errorf("reason %q", o.Reason)
	}
	got := strings.Join(ev.lines(), "\n")
	for _, w := range []string{"tail -f " + o.Log, "patchgate check", "kill -TERM -- -" + strconv.Itoa(pid)} {
		if !strings.Contains(got, w) {
			t.Errorf("progress lacks %q:\n%s", w, got)
		}
	}
	// It goes on: the update completes.
	letGo(t, root)
	waitGone(t, pid)
	for i := 0; i < 600; i++ {
		if _, ok := rem.Last(); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last, ok := rem.Last(); !ok || last.Status != StatusPatched || !patchInForce(m.Snapshot(), "kpatch_4_18_0_513_9_1_2_1") {
		t.Errorf("after the background run: %+v %v", last, ok)
	}
	if b := readOrFail(t, o.Log); !strings.HasSuffix(string(b), "transition complete (2 seconds)\n") {
		t.Errorf("run log:\n%s", b)
	}
}

// Interrupted while the site's own command runs: the signal goes to its
// process group, and once it exited the rest of the group (a helper that
// ignores SIGINT) is killed; nothing is left behind and no further command
// runs.
func TestApplyInterruptStopsTheSiteCommand(t *testing.T) {
	for _, trap := range []bool{false, true} {
		root := copyTree(t, "debian12-nolivepatch")
		installTool(t, root, "site-update", "usr/local/sbin/site-update")
		ev := &events{}
		argv := []string{"/usr/local/sbin/site-update"}
		if trap {
			argv = append(argv, "trap")
		}
		r := must(NewReader(WithHostRoot(root)))
		m := must(NewMonitor(r))
		m.Refresh(context.Background())
		rem := must(NewRemediator(r, m, WithCommand(argv), WithBehind(behindWithout("livepatch_fix")), WithBackoff(0), WithProgress(ev.add)))
		sigs := make(chan os.Signal, 2)
		ev.on = func(e Event) {
			switch {
			case e.Kind == EventOutput && strings.HasPrefix(e.Line, "site-update: downloading"):
				sigs <- syscall.SIGINT
			case e.Kind == EventOutput && strings.HasPrefix(e.Line, "site-update: SIGINT ignored"):
				// The second Ctrl-C forces.
				sigs <- syscall.SIGINT
			}
		}
		o := rem.Apply(sigs)
		pid, helper := readPID(t, root, "fixture-update.pid"), readPID(t, root, "fixture-helper.pid")
		if o.Status != StatusFailed || o.Interrupted != "SIGINT" || !strings.Contains(o.Reason, "stopped on SIGINT") || o.PID != 0 {
			t.Errorf("trap %v: %+v", trap, o)
		}
		proctest.WaitGone(time.Minute, func() bool { return len(proctest.GroupMembers(pid)) > 0 })
		if proctest.Alive(pid) || proctest.Alive(helper) || len(proctest.GroupMembers(pid)) != 0 {
			t.Errorf("trap %v: left behind: command %v helper %v group %v", trap, proctest.Alive(pid), proctest.Alive(helper), proctest.GroupMembers(pid))
			killGroup(t, pid)
		}
		got := strings.Join(ev.lines(), "\n")
		if !strings.Contains(got, "patchgate: SIGINT: stopping "+strings.Join(argv, " ")+" (pid "+strconv.Itoa(pid)+"): spec.remediation.command is the site's own command") {
			t.Errorf("trap %v: progress:\n%s", trap, got)
		}
		if killed := strings.Contains(got, "SIGINT again: killing /usr/local/sbin/site-update"); killed != trap {
			t.Errorf("trap %v: second signal killed it: %v\n%s", trap, killed, got)
		}
		if _, err := os.Stat(filepath.Join(root, "sys/kernel/livepatch/livepatch_fix")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("trap %v: the stopped command went on: %v", trap, err)
		}
	}
}

func TestStopsOnInterruptPerProvider(t *testing.T) {
	for tree, want := range map[string]bool{"rhel8-kpatch": false, "ubuntu20-kernelcare": false, "ubuntu18-canonical-json": false, "ol6-ksplice": false} {
		_, _, rem := setup(t, tree, nil, WithBehind(func(*policy.KernelState) bool { return true }))
		if stop, why := rem.StopsOnInterrupt(); stop != want || why == "" {
			t.Errorf("%s: stop %v (%s)", tree, stop, why)
		}
		// The site's own command is stopped, whatever the provider.
		_, _, rem = setup(t, tree, nil, WithBehind(func(*policy.KernelState) bool { return true }), WithCommand([]string{"/usr/local/sbin/x"}))
		if stop, _ := rem.StopsOnInterrupt(); !stop {
			t.Errorf("%s with a command: not stopped", tree)
		}
	}
}

func TestArgvString(t *testing.T) {
	for in, want := range map[string]string{
		"kpatch\x00load\x00m":       `kpatch load m`,
		"/x/y\x00a b\x00\x00it's":   `/x/y "a b" "" "it's"`,
		"t\x00\x1b[31mred\x00é\x00": `t "\x1b[31mred" "é" ""`,
	} {
		if got := argvString(strings.Split(in, "\x00")); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func readOrFail(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
