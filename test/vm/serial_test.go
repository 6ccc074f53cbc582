package vm

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// testdata/serial-main.log is the raw serial console of a real, passing boot
// of the guest (test/vm/guest/init, scenario main) on Debian's 6.1.0-56-amd64
// under qemu TCG (copied from .cache/vm/serial-main.log after `make vmtest`).
// It keeps the parser honest about real console output: firmware escape
// codes, CRLF line ends, kernel lines, multi-line JSON.
func TestParseRecordedBoot(t *testing.T) {
	b, err := os.ReadFile("testdata/serial-main.log")
	if err != nil {
		t.Fatal(err)
	}
	run, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if run.Scenario != "main" || !run.Done {
		t.Fatalf("scenario %q done %v", run.Scenario, run.Done)
	}
	k := run.Step("0-kernel")
	if k == nil || !k.Complete || k.RC != 0 || k.Text("stdout") != "6.1.0-56-amd64" || k.Text("cmd") != "uname -r" {
		t.Fatalf("0-kernel: %+v", k)
	}
	if k.Begin <= 0 || k.End < k.Begin {
		t.Fatalf("0-kernel times %v..%v", k.Begin, k.End)
	}
	if s := run.Step("2-cmdline"); s == nil || s.Text("stdout") != "this has been live patched" {
		t.Fatalf("2-cmdline: %+v", s)
	}
	// The sample's load window: sysfs showed transition=1 around a step.
	windows := run.StepsWithPrefix("2-window-")
	if len(windows) == 0 {
		t.Fatal("no 2-window- steps")
	}
	stable := 0
	for _, w := range windows {
		if st, ok := w.Stable(); ok {
			if st["livepatch_sample"] != (PatchState{Enabled: true, Transition: true}) {
				t.Fatalf("window step %s: %v", w.ID, st)
			}
			stable++
		}
	}
	// In this recording the first window's transition ended during the check.
	if _, ok := windows[0].Stable(); ok || stable == 0 {
		t.Fatalf("%d stable windows; the first one stable: %v", stable, ok)
	}
	d := run.Step("3-disable")
	after, ok := d.Sysfs("sysfs-after")
	if !ok || len(after) != 3 || after["livepatch_version2"] != (PatchState{Transition: true}) {
		t.Fatalf("3-disable sysfs-after: %v %v", after, ok)
	}
	if _, stable := d.Stable(); stable {
		t.Fatal("3-disable changed sysfs; Stable must say so")
	}
	if got := FormatState(after); got != "livepatch_sample enabled=1 transition=0\nlivepatch_version enabled=1 transition=0\nlivepatch_version2 enabled=0 transition=1\n" {
		t.Fatalf("FormatState: %q", got)
	}
	if s := run.Step("1-check"); s.RC != 1 || !strings.Contains(s.Text("stdout"), `"rule": "kernelPatches"`) {
		t.Fatalf("1-check: %+v", s)
	}
	dump := run.Dump("disabling")
	if dump == nil || !dump.Complete || !contains(dump.Lines, "f 200 sys/kernel/livepatch/livepatch_version2/force !") ||
		!contains(dump.Lines, "f 644 proc/sys/kernel/tainted = 45056") {
		t.Fatalf("dump disabling: %+v", dump)
	}
	if len(run.Dumps) != 6 {
		t.Fatalf("%d dumps", len(run.Dumps))
	}
	// Firmware and the final kernel line are console, not step output.
	if !containsPrefix(run.Console, "SeaBIOS") && !containsSub(run.Console, "SeaBIOS") {
		t.Fatalf("console lines: %q", run.Console)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func containsPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func containsSub(lines []string, p string) bool {
	for _, l := range lines {
		if strings.Contains(l, p) {
			return true
		}
	}
	return false
}

func TestParseProtocol(t *testing.T) {
	ok := "@@VMTEST BOOT main\r\n" +
		"@@VMTEST STEP a BEGIN t=1.5\r\n@@VMTEST SECTION stdout\r\nhello\r\n" +
		"[    2.0] kernel noise @@VMTEST STEP a END rc=3 t=2.25\r\n@@VMTEST DONE\r\n"
	run, err := Parse(strings.NewReader(ok))
	if err != nil {
		t.Fatal(err)
	}
	a := run.Step("a")
	if a.RC != 3 || !a.Complete || a.Begin != 1.5 || a.End != 2.25 || a.Text("stdout") != "hello\n[    2.0] kernel noise " {
		t.Fatalf("step a: %+v", a)
	}

	// A guest that stops half-way is not a parse error: the step is
	// incomplete and the run is not done.
	run, err = Parse(strings.NewReader("@@VMTEST BOOT main\n@@VMTEST STEP b BEGIN\nKernel panic\n"))
	if err != nil || run.Done || run.Last().ID != "b" || run.Last().Complete {
		t.Fatalf("half run: %+v %v", run, err)
	}

	bad := map[string]string{
		"end without begin":  "@@VMTEST STEP a END rc=0\n",
		"end of other step":  "@@VMTEST STEP a BEGIN\n@@VMTEST STEP b END rc=0\n",
		"nested step":        "@@VMTEST STEP a BEGIN\n@@VMTEST STEP b BEGIN\n",
		"repeated step":      "@@VMTEST STEP a BEGIN\n@@VMTEST STEP a END rc=0\n@@VMTEST STEP a BEGIN\n",
		"missing rc":         "@@VMTEST STEP a BEGIN\n@@VMTEST STEP a END\n",
		"bad rc":             "@@VMTEST STEP a BEGIN\n@@VMTEST STEP a END rc=x\n",
		"section outside":    "@@VMTEST SECTION stdout\n",
		"repeated section":   "@@VMTEST STEP a BEGIN\n@@VMTEST SECTION x\n@@VMTEST SECTION x\n",
		"unknown marker":     "@@VMTEST FOO\n",
		"empty marker":       "@@VMTEST \n",
		"done inside step":   "@@VMTEST STEP a BEGIN\n@@VMTEST DONE\n",
		"dump inside step":   "@@VMTEST STEP a BEGIN\n@@VMTEST DUMP x BEGIN\n",
		"dump end unmatched": "@@VMTEST DUMP x BEGIN\n@@VMTEST DUMP y END\n",
		"repeated dump":      "@@VMTEST DUMP x BEGIN\n@@VMTEST DUMP x END\n@@VMTEST DUMP x BEGIN\n",
		"boot without name":  "@@VMTEST BOOT\n",
		"huge line":          strings.Repeat("x", maxLine+1) + "\n",
	}
	for name, in := range bad {
		if _, err := Parse(strings.NewReader(in)); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: want ErrProtocol, got %v", name, err)
		}
	}
}

func TestSysfsSection(t *testing.T) {
	s := &Step{Sections: map[string][]string{
		"sysfs-before": {"p enabled=1 transition=1"},
		"sysfs-after":  {"p enabled=1 transition="}, // directory vanished mid-read
	}}
	if _, ok := s.Sysfs("sysfs-after"); ok {
		t.Fatal("incomplete line accepted")
	}
	if _, ok := s.Stable(); ok {
		t.Fatal("Stable with an incomplete side")
	}
	s.Sections["sysfs-after"] = []string{"p enabled=1 transition=1", "q enabled=0 transition=1"}
	if _, ok := s.Stable(); ok {
		t.Fatal("Stable although a patch appeared")
	}
	s.Sections["sysfs-after"] = []string{"p enabled=1 transition=0"}
	if _, ok := s.Stable(); ok {
		t.Fatal("Stable although the transition ended")
	}
	s.Sections["sysfs-after"] = []string{"p enabled=1 transition=1"}
	if st, ok := s.Stable(); !ok || st["p"] != (PatchState{Enabled: true, Transition: true}) {
		t.Fatalf("Stable: %v %v", st, ok)
	}
	for _, line := range []string{"p enabled=2 transition=0", "p enabled=1", "p transition=0 enabled=1"} {
		s.Sections["sysfs-before"] = []string{line}
		if _, ok := s.Sysfs("sysfs-before"); ok {
			t.Errorf("%q accepted", line)
		}
	}
}

// FuzzParse feeds arbitrary console output to the parser: it must return
// (an error or a run), never panic, and a run's steps must be consistent.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/serial-main.log"); err == nil {
		f.Add(string(b))
	}
	f.Add("@@VMTEST BOOT main\n@@VMTEST STEP a BEGIN t=1\n@@VMTEST SECTION stdout\nx\n@@VMTEST STEP a END rc=0 t=2\n@@VMTEST DONE\n")
	f.Fuzz(func(t *testing.T, in string) {
		run, err := Parse(strings.NewReader(in))
		if run == nil {
			t.Fatal("nil run")
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("error not ErrProtocol: %v", err)
		}
		for i, s := range run.Steps {
			if run.Step(s.ID) != s {
				t.Fatalf("step %q not indexed", s.ID)
			}
			if !s.Complete && i != len(run.Steps)-1 {
				t.Fatalf("incomplete step %q before the last", s.ID)
			}
			for _, sec := range []string{"sysfs-before", "sysfs-after"} {
				s.Sysfs(sec)
			}
		}
	})
}
