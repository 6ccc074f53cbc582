package policytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Report is every test file's outcome, as `patchgate test -o json` prints
// it.
type Report struct {
	Files  []*FileResult `json:"files"`
	Passed int           `json:"passed"`
	Failed int           `json:"failed"`
}

// NewReport counts the cases of files.
func NewReport(files []*FileResult) *Report {
	r := &Report{Files: files}
	if r.Files == nil {
		r.Files = []*FileResult{}
	}
	for _, f := range files {
		for _, c := range f.Cases {
			if c.Pass {
				r.Passed++
			} else {
				r.Failed++
			}
		}
	}
	return r
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteText writes the report for people: one line per case, and under a
// failed case what differs and every violation the policy reported.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Files {
		fmt.Fprintf(&b, "%s: policy %q %s\n", f.Path, f.Policy.Name, f.Policy.Digest)
		for _, c := range f.Cases {
			if c.Pass {
				fmt.Fprintf(&b, "  PASS  %s\n", c.Name)
				continue
			}
			fmt.Fprintf(&b, "  FAIL  %s  (kernel %s)\n", c.Name, c.Kernel)
			for _, d := range c.Diff {
				fmt.Fprintf(&b, "          - %s\n", d)
			}
			fmt.Fprintf(&b, "          the policy decided %s", c.Got.Decision)
			if len(c.Got.Violations) == 0 {
				b.WriteString(" with no violation")
			}
			b.WriteString("\n")
			for _, v := range c.Got.Violations {
				fmt.Fprintf(&b, "            %-7s %s: %s\n", v.Action, v.Rule, v.Detail)
			}
			if len(c.Got.Deferred) > 0 {
				fmt.Fprintf(&b, "            deferred (input not seen): %s\n", strings.Join(c.Got.Deferred, ", "))
			}
			if len(c.Got.Exemptions) > 0 {
				fmt.Fprintf(&b, "            exemptions applied: %s\n", strings.Join(c.Got.Exemptions, ", "))
			}
		}
	}
	fmt.Fprintf(&b, "%d %s: %d passed, %d failed\n", r.Passed+r.Failed, plural(r.Passed+r.Failed, "case", "cases"), r.Passed, r.Failed)
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Exit codes of Main, as every patchgate command's.
const (
	ExitPass    = 0 // every case passed
	ExitFail    = 1 // a case did not give what it expects
	ExitInvalid = 2 // a test file, or an input it names, could not be read
)

// Main runs the test files found under paths and writes the report in
// format ("text" or "json") to stdout, and each invalid test file's errors
// to stderr. The valid files still run. Exit: ExitInvalid when any file is
// invalid, else ExitFail when any case failed, else ExitPass.
func Main(ctx context.Context, paths []string, format string, stdout, stderr io.Writer) int {
	if format != "text" && format != "json" {
		say(stderr, "patchgate test: -o %q: want text or json\n", format)
		return ExitInvalid
	}
	files, err := Find(paths)
	if err != nil {
		say(stderr, "patchgate test: %v\n", err)
		return ExitInvalid
	}
	code := ExitPass
	var results []*FileResult
	for _, p := range files {
		f, err := ReadFile(p)
		if err == nil {
			var r *FileResult
			if r, err = Run(ctx, f); err == nil {
				results = append(results, r)
				if r.Failed() && code == ExitPass {
					code = ExitFail
				}
				continue
			}
		}
		say(stderr, "patchgate test: %v\n", err)
		code = ExitInvalid
	}
	rep := NewReport(results)
	if format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		say(stderr, "patchgate test: writing the report: %v\n", err)
		return ExitInvalid
	}
	return code
}

// say writes a message for the user; a failed write to stderr leaves
// nothing else to tell it with.
func say(w io.Writer, format string, args ...any) {
	if _, err := fmt.Fprintf(w, format, args...); err != nil {
		return
	}
}
