package livepatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"
)

// An operator's update (patchgate check --apply): what a run shows while it
// goes on, and what an interrupt (SIGINT, SIGTERM) does to it.
//
// Whether the command is stopped or left running depends on what stopping
// it would leave behind, per provider (docs/operations.md):
//
//   - kpatch load inserts the patch module, then waits for the kernel's
//     transition. Killing kpatch cannot abort the transition, which the
//     kernel finishes on its own; it only skips kpatch's own handling of a
//     stalled transition and leaves the module loaded. Left running.
//   - kcarectl --update loads a patchset into the kernel; killed mid-way it
//     may leave part of it loaded. Left running.
//   - canonical-livepatch refresh asks the canonical-livepatchd daemon,
//     which applies the patch whatever happens to the client. Left running.
//   - uptrack-upgrade -y applies the updates one after another; killed
//     mid-way some are applied and some are not. Left running.
//   - spec.remediation.command is the site's own command: it gets the
//     signal in its process group, as from a shell, and the whole group is
//     killed when it has not exited after StopGrace or on a second signal.
//
// A command left running keeps its own process group (so the terminal's
// Ctrl-C never reached it) and writes to the run log (WithRunLog); Apply
// reports its pid and the log. Once the commands are done and only the
// kernel's transition is awaited, there is nothing to stop: the kernel
// finishes it.

// EventKind says what an Event reports.
type EventKind string

// Event kinds, in the order a run produces them.
const (
	// EventStart: a command started (Argv, PID, Log).
	EventStart EventKind = "start"
	// EventOutput: one line of its output (Argv, Stream, Line).
	EventOutput EventKind = "output"
	// EventExit: the command ended (Argv, ExitCode, Err, Duration).
	EventExit EventKind = "exit"
	// EventWaiting: the commands are done and a live patch is still in
	// transition; the run waits for the kernel (Waiting, Duration: the
	// longest it waits).
	EventWaiting EventKind = "waiting"
	// EventWaited: the wait is over (Duration; Waiting: what is still in
	// transition).
	EventWaited EventKind = "waited"
	// EventDone: the run's outcome (Outcome, Duration).
	EventDone EventKind = "done"
	// EventNote: anything else the operator should know (Message): an
	// interrupt and what it does, a run log that could not be created.
	EventNote EventKind = "note"
)

// Event is one step of a run, for WithProgress.
type Event struct {
	Kind     EventKind
	Argv     []string
	PID      int
	Log      string
	Stream   string
	Line     string
	ExitCode int
	Err      error
	Duration time.Duration
	Waiting  []string
	Outcome  *Outcome
	Message  string
}

// DefaultRunLogDir is the host directory where patchgate check --apply
// keeps each run's output log (WithRunLog).
const DefaultRunLogDir = "/var/log/patchgate"

// StopGrace is how long Apply waits for a stopped command to exit before
// it kills the command's process group.
const StopGrace = 10 * time.Second

// runLogMode: the run log holds the output of every command of a run.
const runLogMode = 0o600

// StopsOnInterrupt reports whether Apply stops the update command when
// interrupted (true) or leaves it running in the background (false), and
// why, in words for the operator.
func (r *Remediator) StopsOnInterrupt() (bool, string) {
	if len(r.command) > 0 {
		return true, "spec.remediation.command is the site's own command: it gets the signal in its process group, as from a shell"
	}
	switch r.provider {
	case ProviderKpatch:
		return false, "killing kpatch load cannot abort the kernel's live-patch transition and would leave the patch module loaded without kpatch's own clean-up"
	case ProviderKernelCare:
		return false, "kcarectl --update loads a patchset into the kernel; killed mid-way it may leave part of it loaded"
	case ProviderCanonical:
		return false, "canonical-livepatch refresh only asks the canonical-livepatchd daemon, which applies the patch whatever happens to the client"
	case ProviderKsplice:
		return false, "uptrack-upgrade applies its updates one after another; killed mid-way it leaves some applied and some not"
	}
	return true, "no provider tool is known to be unsafe to stop"
}

// Apply runs the update as Ensure does and waits for the outcome, for an
// operator at a terminal (patchgate check --apply): with WithProgress it
// shows every step. A signal received on signals interrupts the wait:
//
//   - while a command runs that StopsOnInterrupt leaves running, Apply
//     returns at once, the command going on in its own process group;
//     the outcome is "running" with its PID and Log;
//   - while a command runs that StopsOnInterrupt stops, Apply forwards the
//     signal to the command's process group and waits up to StopGrace for
//     it to exit, then, or at a second signal, kills the whole group with
//     SIGKILL; no further command starts and the outcome is "failed";
//   - while the run waits for the kernel's transition, Apply returns at
//     once: the kernel finishes the transition by itself.
//
// The outcome's Interrupted names the signal.
func (r *Remediator) Apply(signals <-chan os.Signal) Outcome {
	run, o := r.begin()
	if run == nil {
		return o
	}
	select {
	case <-run.done:
		return run.outcome
	case sig := <-signals:
		return r.interrupt(run, sig, signals)
	}
}

func (r *Remediator) interrupt(run *remediationRun, sig os.Signal, signals <-chan os.Signal) Outcome {
	name := signalName(sig)
	argv, pid, waiting, logPath := run.current()
	stop, why := r.StopsOnInterrupt()
	o := Outcome{Status: StatusRunning, Interrupted: name, Log: logPath, Commands: run.cmds, StartedAt: run.startedAt}
	switch {
	case pid == 0 && waiting:
		o.Reason = fmt.Sprintf("interrupted by %s after the update command succeeded, while patchgate re-read the state and waited for any live-patch transition, which the kernel finishes by itself", name)
		r.emit(Event{Kind: EventNote, Message: o.Reason + "; `patchgate check` shows when the patch is in force"})
		return o
	case pid == 0 && !stop:
		// Between two commands, or a command is just starting: no
		// further command starts, and one that is starting is left
		// running like any of this provider's.
		run.stop(name, nil)
		o.Reason = fmt.Sprintf("interrupted by %s between commands: no further command starts; one that was starting keeps running in the background: %s", name, why)
		r.emit(Event{Kind: EventNote, Message: o.Reason + "; `patchgate check` shows the kernel's state"})
		return o
	case pid == 0:
		// Between two commands, or a command is just starting: it gets
		// the signal as soon as it runs (runOne), and no further one
		// starts.
		run.stop(name, sig)
		r.emit(Event{Kind: EventNote, Message: fmt.Sprintf("%s: no further command starts; waiting up to %v for the run to end (again to kill it now)", name, StopGrace)})
		return r.awaitStopped(run, name, signals)
	case !stop:
		o.PID = pid
		follow := "`patchgate check` shows the kernel's state"
		if logPath != "" {
			follow = "its output goes on to " + logPath + " (tail -f " + logPath + "); " + follow
		}
		o.Reason = fmt.Sprintf("interrupted by %s: %s (pid %d) keeps running in the background: %s", name, argvString(argv), pid, why)
		r.emit(Event{Kind: EventNote, Message: o.Reason + "; " + follow +
			fmt.Sprintf("; to stop it anyway: kill -TERM -- -%d (its process group)", pid)})
		return o
	}
	run.stop(name, sig)
	r.emit(Event{Kind: EventNote, Message: fmt.Sprintf("%s: stopping %s (pid %d): %s; sent %s to its process group, waiting up to %v for it to exit (again to kill it now)",
		name, argvString(argv), pid, why, name, StopGrace)})
	return r.awaitStopped(run, name, signals)
}

// awaitStopped waits for a stopped run to end, killing the running
// command's process group after StopGrace or at the next signal.
func (r *Remediator) awaitStopped(run *remediationRun, name string, signals <-chan os.Signal) Outcome {
	grace := time.NewTimer(StopGrace)
	defer grace.Stop()
	select {
	case <-run.done:
	case s := <-signals:
		r.killRun(run, fmt.Sprintf("%s again", signalName(s)))
		<-run.done
	case <-grace.C:
		r.killRun(run, fmt.Sprintf("still running %v after %s", StopGrace, name))
		<-run.done
	}
	o := run.outcome
	o.Interrupted = name
	return o
}

func (r *Remediator) killRun(run *remediationRun, why string) {
	argv, pid, _, _ := run.current()
	if pid == 0 {
		return
	}
	r.emit(Event{Kind: EventNote, Message: fmt.Sprintf("%s: killing %s (pid %d) and its process group", why, argvString(argv), pid)})
	run.stop("", syscall.SIGKILL)
}

// stop marks the run stopped (name, unless already set) and sends sig, if
// any, to the running command's process group, or to the next one as soon
// as it runs. The pid is cleared before the command is reaped
// (runHooks.exited), so it is never a reused one.
func (run *remediationRun) stop(name string, sig os.Signal) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.stopSig == "" {
		run.stopSig = name
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return
	}
	run.stopWith = s
	if run.pid == 0 {
		return
	}
	if err := syscall.Kill(-run.pid, s); err != nil && !errors.Is(err, syscall.ESRCH) {
		// Nothing else can be done from here; the run's timeout still
		// kills the group.
		return
	}
}

// runOne runs one command of a run, following it: the pid for Apply, every
// output line to the logger (at info, prefixed with the tool's name, as
// the node service logs it) and to the progress callback.
func (r *Remediator) runOne(ctx context.Context, run *remediationRun, argv []string, logFile *os.File, log logrus.FieldLogger) (ToolResult, error) {
	prefix := "[" + filepath.Base(argv[0]) + "] "
	start := time.Now()
	h := &runHooks{
		log: logFile,
		started: func(pid int) {
			run.mu.Lock()
			run.argv, run.pid = argv, pid
			logPath, stopWith := run.logPath, run.stopWith
			if stopWith != 0 {
				// Stopped while it was starting.
				if err := syscall.Kill(-pid, stopWith); err != nil && !errors.Is(err, syscall.ESRCH) {
					log.WithError(err).Warn("signalling a stopped command's process group")
				}
			}
			run.mu.Unlock()
			log.WithField("pid", pid).Info("running " + argvString(argv))
			r.emit(Event{Kind: EventStart, Argv: argv, PID: pid, Log: logPath})
		},
		line: func(stream, text string) {
			log.WithField("stream", stream).Info(prefix + text)
			r.emit(Event{Kind: EventOutput, Argv: argv, Stream: stream, Line: text})
		},
		exited: func(pid int) {
			run.mu.Lock()
			run.pid = 0
			stopped := run.stopSig != ""
			run.mu.Unlock()
			if !stopped {
				// Finished on its own: what it started in the background
				// is its business (a daemon, the kernel's work).
				return
			}
			// Stopped: nothing of its group may stay behind. The group
			// id is still taken, the leader not reaped yet.
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				log.WithError(err).Warn("killing the rest of a stopped command's process group")
			}
		},
	}
	res, err := r.env.runArgvFollowed(ctx, r.timeout, argv, h)
	run.mu.Lock()
	run.argv, run.pid = nil, 0
	run.mu.Unlock()
	r.emit(Event{Kind: EventExit, Argv: argv, ExitCode: res.ExitCode, Err: err, Duration: time.Since(start)})
	return res, err
}

// openRunLog creates the run's output log (WithRunLog) or returns nil.
func (r *Remediator) openRunLog(run *remediationRun, log logrus.FieldLogger) *os.File {
	if r.runLog == "" {
		return nil
	}
	name := fmt.Sprintf("apply-%s-%d.log", time.Now().UTC().Format("20060102T150405Z"), os.Getpid())
	dir := r.env.Path(r.runLog)
	f, err := createLogIn(dir, name)
	if err != nil {
		f, err = os.CreateTemp("", "patchgate-apply-*.log")
		msg := fmt.Sprintf("the output log cannot go to %s (%v)", dir, err)
		if err == nil {
			msg += "; it goes to " + f.Name()
		} else {
			msg += fmt.Sprintf(", nor to the temporary directory (%v): the output is only shown", err)
		}
		log.Warn(msg)
		r.emit(Event{Kind: EventNote, Message: msg})
		if err != nil {
			return nil
		}
	}
	run.mu.Lock()
	run.logPath = f.Name()
	run.mu.Unlock()
	return f
}

// createLogIn creates a new file name in dir (made 0700 if missing). dir
// must be a real directory owned by root (or patchgate's user) and writable
// by no one else, and the file must not exist: no one else can point it at
// another file.
func createLogIn(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if err := trustedEntry(fi, dir); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND|syscall.O_NOFOLLOW, runLogMode)
}

// transitionTargets describes what is still in transition and where it is
// read.
func (r *Remediator) transitionTargets(k *policy.KernelState) []string {
	if k == nil {
		return nil
	}
	var out []string
	for _, p := range k.Patches {
		if !p.Transition {
			continue
		}
		switch p.Provider {
		case ProviderSysfs:
			out = append(out, fmt.Sprintf("%s (%s is 1)", p.Name, r.env.Path("/sys/kernel/livepatch/"+p.Name+"/transition")))
		case ProviderKpatch:
			out = append(out, fmt.Sprintf("%s (kpatch list shows it enabling or disabling)", p.Name))
		default:
			out = append(out, fmt.Sprintf("%s (%s shows it in transition)", p.Name, p.Provider))
		}
	}
	return out
}

// argvString shows an argv as it was run, without a shell: words joined by
// spaces, any word that a reader could misread quoted.
func argvString(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsFunc(a, func(c rune) bool { return c <= ' ' || c == '"' || c == '\'' || c == '\\' || c > '~' }) {
			a = strconv.Quote(a)
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	if s, ok := sig.(syscall.Signal); ok {
		return fmt.Sprintf("signal %d", int(s))
	}
	return sig.String()
}

// ProgressPrinter returns a WithProgress callback that writes a run's steps
// to w for people: "patchgate: ..." lines for the steps and each output
// line prefixed with the tool's name ("[kcarectl] ..."). patchgate check
// --apply writes them to stderr, so that stdout keeps only the report.
func ProgressPrinter(w io.Writer) func(Event) {
	var mu sync.Mutex
	broken := false
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		line := progressLine(e)
		if line == "" || broken {
			return
		}
		// Progress is best effort: a closed stderr must not stop an
		// update, and is not written to again.
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			broken = true
		}
	}
}

func progressLine(e Event) string {
	d := func(x time.Duration) string { return x.Round(time.Millisecond).String() }
	switch e.Kind {
	case EventStart:
		s := fmt.Sprintf("patchgate: running %s (pid %d, no shell)", argvString(e.Argv), e.PID)
		if e.Log != "" {
			s += "; output also in " + e.Log
		}
		return s
	case EventOutput:
		return "[" + filepath.Base(e.Argv[0]) + "] " + e.Line
	case EventExit:
		switch {
		case e.Err != nil:
			return fmt.Sprintf("patchgate: %s failed after %s: %v", argvString(e.Argv), d(e.Duration), e.Err)
		case e.ExitCode != 0:
			return fmt.Sprintf("patchgate: %s failed after %s: exit status %d", argvString(e.Argv), d(e.Duration), e.ExitCode)
		}
		return fmt.Sprintf("patchgate: %s exited 0 after %s", argvString(e.Argv), d(e.Duration))
	case EventWaiting:
		return fmt.Sprintf("patchgate: waiting up to %v for the kernel to finish the live-patch transition of %s (re-read every %v)",
			e.Duration, strings.Join(e.Waiting, ", "), transitionPoll)
	case EventWaited:
		if len(e.Waiting) > 0 {
			return fmt.Sprintf("patchgate: gave up waiting after %s: still in transition: %s", d(e.Duration), strings.Join(e.Waiting, ", "))
		}
		return fmt.Sprintf("patchgate: transition finished after %s", d(e.Duration))
	case EventDone:
		s := fmt.Sprintf("patchgate: remediation %s after %s", e.Outcome.Status, d(e.Duration))
		if e.Outcome.Reason != "" {
			s += ": " + e.Outcome.Reason
		}
		return s
	case EventNote:
		return "patchgate: " + e.Message
	}
	return ""
}
