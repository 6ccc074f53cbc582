// Package vm proves patchgate against a real kernel: test/vm/guest/init runs
// real live patches and patchgate inside a qemu guest, and the test in this
// package (build tag vmtest) parses the guest's serial console and asserts on
// every step. This file is the parser of that console output; see the marker
// protocol at the top of test/vm/guest/init.
package vm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// marker starts every line of the protocol. The kernel may print on the
// same console, so a marker is found anywhere in a line.
const marker = "@@VMTEST "

// ErrProtocol reports serial output that breaks the marker protocol.
var ErrProtocol = errors.New("vmtest serial protocol")

// Run is one boot of the guest as its serial console showed it.
type Run struct {
	// Scenario is the guest's "vmtest=" kernel argument, from the BOOT line.
	Scenario string
	// Steps are in the order the guest ran them.
	Steps []*Step
	Dumps []*Dump
	// Done is set when the guest reached the end of its script.
	Done bool
	// Console holds every line outside a step or dump (firmware, kernel).
	Console []string
	byID    map[string]*Step
}

// Step is one command the guest ran, with its output.
type Step struct {
	ID string
	// RC is the command's exit code; valid only when Complete.
	RC int
	// Begin and End are the guest's uptime in seconds.
	Begin, End float64
	// Sections maps a section name (cmd, stdout, stderr, sysfs-before,
	// sysfs-after) to its lines.
	Sections map[string][]string
	// Complete is set when the step's END line was seen.
	Complete bool
}

// Dump is a snapshot of the guest's livepatch sysfs tree.
type Dump struct {
	Label    string
	Lines    []string
	Complete bool
}

// Step returns the step with the given ID, or nil.
func (r *Run) Step(id string) *Step { return r.byID[id] }

// StepsWithPrefix returns the steps whose ID starts with prefix, in order.
func (r *Run) StepsWithPrefix(prefix string) []*Step {
	var out []*Step
	for _, s := range r.Steps {
		if strings.HasPrefix(s.ID, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// Dump returns the dump with the given label, or nil.
func (r *Run) Dump(label string) *Dump {
	for _, d := range r.Dumps {
		if d.Label == label {
			return d
		}
	}
	return nil
}

// Last returns the last step the guest started, or nil.
func (r *Run) Last() *Step {
	if len(r.Steps) == 0 {
		return nil
	}
	return r.Steps[len(r.Steps)-1]
}

// Text returns a section's lines joined with newlines.
func (s *Step) Text(section string) string {
	return strings.Join(s.Sections[section], "\n")
}

// PatchState is one live patch as the guest read it from sysfs.
type PatchState struct {
	Enabled    bool
	Transition bool
}

// Sysfs parses a sysfs-before or sysfs-after section ("name enabled=1
// transition=0" per patch). ok is false when a line is incomplete, which
// happens when a patch directory disappears while the guest reads it.
func (s *Step) Sysfs(section string) (state map[string]PatchState, ok bool) {
	state = map[string]PatchState{}
	for _, line := range s.Sections[section] {
		f := strings.Fields(line)
		if len(f) != 3 {
			return state, false
		}
		en, ok1 := flag01(f[1], "enabled=")
		tr, ok2 := flag01(f[2], "transition=")
		if !ok1 || !ok2 {
			return state, false
		}
		state[f[0]] = PatchState{Enabled: en, Transition: tr}
	}
	return state, true
}

func flag01(field, key string) (bool, bool) {
	v, found := strings.CutPrefix(field, key)
	if !found {
		return false, false
	}
	switch v {
	case "0":
		return false, true
	case "1":
		return true, true
	}
	return false, false
}

// Stable returns the sysfs state when it was the same before and after the
// step's command, so that the command must have seen exactly that state.
func (s *Step) Stable() (map[string]PatchState, bool) {
	before, ok1 := s.Sysfs("sysfs-before")
	after, ok2 := s.Sysfs("sysfs-after")
	if !ok1 || !ok2 || len(before) != len(after) {
		return nil, false
	}
	for name, b := range before {
		if a, found := after[name]; !found || a != b {
			return nil, false
		}
	}
	return before, true
}

// FormatState prints a sysfs state the way the guest does, sorted by name.
func FormatState(state map[string]PatchState) string {
	names := make([]string, 0, len(state))
	for n := range state {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		st := state[n]
		fmt.Fprintf(&b, "%s enabled=%d transition=%d\n", n, b01(st.Enabled), b01(st.Transition))
	}
	return b.String()
}

func b01(v bool) int {
	if v {
		return 1
	}
	return 0
}

// maxLine bounds one console line; a longer one is a protocol error.
const maxLine = 1 << 20

// Parse reads a guest's serial console output. Carriage returns are dropped.
// It returns an error for output that breaks the protocol (a step ending
// that never began, a malformed exit code); a guest that stopped half-way
// is not an error here: the step is left incomplete and Done is false.
func Parse(r io.Reader) (*Run, error) {
	run := &Run{byID: map[string]*Step{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var (
		step    *Step
		section string
		dump    *Dump
		lineNo  int
	)
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		line = strings.ReplaceAll(line, "\r", "")
		i := strings.Index(line, marker)
		if i < 0 {
			switch {
			case dump != nil:
				dump.Lines = append(dump.Lines, line)
			case step != nil:
				step.Sections[section] = append(step.Sections[section], line)
			default:
				run.Console = append(run.Console, line)
			}
			continue
		}
		if i > 0 && (step != nil || dump != nil) {
			// Kernel output ran into a marker line; keep the part before it.
			if dump != nil {
				dump.Lines = append(dump.Lines, line[:i])
			} else {
				step.Sections[section] = append(step.Sections[section], line[:i])
			}
		}
		f := strings.Fields(line[i+len(marker):])
		bad := func(why string) error {
			return fmt.Errorf("%w: line %d: %s: %q", ErrProtocol, lineNo, why, line[i:])
		}
		if len(f) == 0 {
			return run, bad("empty marker")
		}
		switch f[0] {
		case "BOOT":
			if len(f) != 2 {
				return run, bad("want BOOT <scenario>")
			}
			run.Scenario = f[1]
		case "DONE":
			if step != nil || dump != nil {
				return run, bad("DONE inside a step or dump")
			}
			run.Done = true
		case "SECTION":
			if step == nil || len(f) != 2 {
				return run, bad("SECTION outside a step")
			}
			section = f[1]
			if _, dup := step.Sections[section]; dup {
				return run, bad("section repeated")
			}
			step.Sections[section] = nil
		case "STEP":
			if len(f) < 3 {
				return run, bad("want STEP <id> BEGIN|END")
			}
			id := f[1]
			switch f[2] {
			case "BEGIN":
				if step != nil || dump != nil {
					return run, bad("step begins inside another")
				}
				if _, dup := run.byID[id]; dup {
					return run, bad("step id repeated")
				}
				step = &Step{ID: id, Sections: map[string][]string{}}
				step.Begin = uptime(f[3:])
				run.Steps = append(run.Steps, step)
				run.byID[id] = step
				section = ""
			case "END":
				if step == nil || step.ID != id {
					return run, bad("step ends that did not begin")
				}
				rc, found := keyValue(f[3:], "rc")
				if !found {
					return run, bad("END without rc")
				}
				n, err := strconv.Atoi(rc)
				if err != nil {
					return run, bad("bad rc")
				}
				step.RC = n
				step.End = uptime(f[3:])
				step.Complete = true
				step = nil
			default:
				return run, bad("want BEGIN or END")
			}
		case "DUMP":
			if len(f) < 3 {
				return run, bad("want DUMP <label> BEGIN|END")
			}
			switch f[2] {
			case "BEGIN":
				if step != nil || dump != nil {
					return run, bad("dump begins inside a step or dump")
				}
				if run.Dump(f[1]) != nil {
					return run, bad("dump label repeated")
				}
				dump = &Dump{Label: f[1]}
				run.Dumps = append(run.Dumps, dump)
			case "END":
				if dump == nil || dump.Label != f[1] {
					return run, bad("dump ends that did not begin")
				}
				dump.Complete = true
				dump = nil
			default:
				return run, bad("want BEGIN or END")
			}
		default:
			return run, bad("unknown marker")
		}
	}
	if err := sc.Err(); err != nil {
		return run, fmt.Errorf("%w: reading console: %v", ErrProtocol, err)
	}
	return run, nil
}

func keyValue(fields []string, key string) (string, bool) {
	for _, f := range fields {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func uptime(fields []string) float64 {
	v, ok := keyValue(fields, "t")
	if !ok {
		return 0
	}
	t, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return t
}
