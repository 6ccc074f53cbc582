package policytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/patchgate/patchgate/internal/specinput"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
)

// FileResult is the outcome of one test file.
type FileResult struct {
	Path   string           `json:"path"`
	Name   string           `json:"name,omitempty"`
	Policy policy.PolicyRef `json:"policy"`
	Cases  []CaseResult     `json:"cases"`
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Name   string   `json:"name"`
	Pass   bool     `json:"pass"`
	Kernel string   `json:"kernel"`
	Want   Expected `json:"expected"`
	Got    Actual   `json:"actual"`
	// Diff lists each difference in words; empty when Pass.
	Diff []string `json:"diff,omitempty"`
}

// Expected is a case's expectation as reported.
type Expected struct {
	Decision     string   `json:"decision"`
	Rules        []string `json:"rules"`
	Deferred     []string `json:"deferred"`
	Exemptions   []string `json:"exemptions,omitempty"`
	KernelBehind *bool    `json:"kernelBehind,omitempty"`
}

// Actual is what the policy decided.
type Actual struct {
	Decision     string             `json:"decision"`
	Rules        []string           `json:"rules"`
	Deferred     []string           `json:"deferred"`
	Exemptions   []string           `json:"exemptions"`
	KernelBehind bool               `json:"kernelBehind"`
	Violations   []policy.Violation `json:"violations"`
}

// Failed reports whether any case failed.
func (r *FileResult) Failed() bool {
	for _, c := range r.Cases {
		if !c.Pass {
			return true
		}
	}
	return false
}

// Find lists the test files under each of paths: a test file itself, or
// every FileName below a directory (sorted). A directory without one is an
// error: a test run that runs nothing must not pass.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == FileName {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%w: no %s under %s", ErrInvalid, FileName, p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// Run loads the policy, kernel states and inputs of f and judges every
// case. An input that cannot be loaded (policy, state, spec) is an
// ErrInvalid error naming the file and line that refers to it: a case
// never passes on input that was not judged.
func Run(ctx context.Context, f *File) (*FileResult, error) {
	pol, err := policy.LoadPaths(f.NodeName, f.Policy...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: policy: %v", ErrInvalid, f.Path, err)
	}
	res := &FileResult{Path: f.Path, Name: f.Name, Policy: pol.Ref()}
	type loaded struct {
		k   *policy.KernelState
		now time.Time
	}
	states := map[string]loaded{}
	names := make([]string, 0, len(f.States))
	for n := range f.States {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ks := f.States[n]
		k, now, err := loadState(ctx, pol, ks)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: kernelStates.%s: %v", ErrInvalid, f.Path, ks.Line, n, err)
		}
		states[n] = loaded{k, now}
	}
	for _, c := range f.Cases {
		w, err := caseWorkload(c)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: case %q: %v", ErrInvalid, f.Path, c.Line, c.Name, err)
		}
		st := states[c.Kernel]
		d := policy.Evaluate(pol, w, st.k, st.now)
		res.Cases = append(res.Cases, compare(c, &d))
	}
	return res, nil
}

// loadState reads one kernel state; nil for an unknown state.
func loadState(ctx context.Context, pol *policy.Policy, ks *KernelState) (*policy.KernelState, time.Time, error) {
	switch {
	case ks.Unknown:
		now := ks.Now
		if now.IsZero() {
			now = time.Now()
		}
		return nil, now, nil
	case ks.File != "":
		data, err := readLimited(ks.File)
		if err != nil {
			return nil, time.Time{}, err
		}
		k, err := policy.ParseKernelState(data)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%s: %w", ks.File, err)
		}
		now := ks.Now
		if now.IsZero() {
			now = k.ObservedAt
		}
		return k, now, nil
	default:
		fi, err := os.Stat(ks.HostRoot)
		if err != nil {
			return nil, time.Time{}, err
		}
		if !fi.IsDir() {
			return nil, time.Time{}, fmt.Errorf("hostRoot %s is not a directory", ks.HostRoot)
		}
		now := ks.Now
		if now.IsZero() {
			now = time.Now()
		}
		r, err := livepatch.NewReader(
			livepatch.WithHostRoot(ks.HostRoot),
			livepatch.WithProvider(pol.Spec.Kernel.Provider),
			livepatch.WithTools(pol.Spec.Kernel.Tools),
			livepatch.WithToolTimeout(30*time.Second),
			livepatch.WithClock(func() time.Time { return now }),
		)
		if err != nil {
			return nil, time.Time{}, err
		}
		k := r.Read(ctx)
		return &k, now, nil
	}
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, specinput.MaxSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > specinput.MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, specinput.MaxSize)
	}
	return data, nil
}

// caseWorkload loads a case's container (and pod) and builds the workload
// as `patchgate eval` does without --host-root: paths judged as written.
func caseWorkload(c *Case) (*policy.Workload, error) {
	ctr, err := loadInput(c.Spec)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	var pod *specinput.Input
	if c.Sandbox != "" {
		if pod, err = loadInput(c.Sandbox); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	// As eval: a plain spec's annotations name the pod only when the
	// case says which runtime wrote them (identityFrom), as the hook reads
	// them with --identity-from.
	from := c.IdentityFrom
	if from == "" {
		from = "none"
	}
	w, _, err := specinput.Workload(ctr, pod, from, policy.FromSpecOptions{
		Source:    "test",
		Pod:       c.Pod,
		Container: c.Container,
	})
	return w, err
}

func loadInput(path string) (*specinput.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	in, err := specinput.Load(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}

func compare(c *Case, d *policy.Decision) CaseResult {
	r := CaseResult{
		Name:   c.Name,
		Kernel: c.Kernel,
		Want: Expected{
			Decision:     c.Expect.Decision,
			Rules:        nonNil(c.Expect.Rules),
			Deferred:     nonNil(c.Expect.Deferred),
			Exemptions:   c.Expect.Exemptions,
			KernelBehind: c.Expect.KernelBehind,
		},
		Got: Actual{
			Decision:     DecisionOf(d.Verdict),
			Rules:        []string{},
			Deferred:     nonNil(slices.Clone(d.Deferred)),
			Exemptions:   nonNil(slices.Clone(d.Exemptions)),
			KernelBehind: d.KernelBehind,
			Violations:   nonNilV(d.Violations),
		},
	}
	for _, v := range d.Violations {
		if !slices.Contains(r.Got.Rules, v.Rule) {
			r.Got.Rules = append(r.Got.Rules, v.Rule)
		}
	}
	slices.Sort(r.Got.Rules)
	slices.Sort(r.Got.Deferred)
	slices.Sort(r.Got.Exemptions)
	if r.Want.Decision != r.Got.Decision {
		r.Diff = append(r.Diff, fmt.Sprintf("decision: want %s, got %s", r.Want.Decision, r.Got.Decision))
	}
	r.Diff = append(r.Diff, setDiff("rules", r.Want.Rules, r.Got.Rules)...)
	r.Diff = append(r.Diff, setDiff("deferred", r.Want.Deferred, r.Got.Deferred)...)
	if r.Want.Exemptions != nil {
		r.Diff = append(r.Diff, setDiff("exemptions", r.Want.Exemptions, r.Got.Exemptions)...)
	}
	if r.Want.KernelBehind != nil && *r.Want.KernelBehind != r.Got.KernelBehind {
		r.Diff = append(r.Diff, fmt.Sprintf("kernelBehind: want %t, got %t", *r.Want.KernelBehind, r.Got.KernelBehind))
	}
	r.Pass = len(r.Diff) == 0
	return r
}

// setDiff names what want lacks and what it has too much of.
func setDiff(what string, want, got []string) []string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	var out []string
	if len(missing) > 0 {
		out = append(out, fmt.Sprintf("%s: expected but not reported: %v", what, missing))
	}
	if len(extra) > 0 {
		out = append(out, fmt.Sprintf("%s: reported but not expected: %v", what, extra))
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilV(s []policy.Violation) []policy.Violation {
	if s == nil {
		return []policy.Violation{}
	}
	return s
}

// IsInvalid reports whether err is a test file or input problem (exit 2)
// rather than a failed expectation.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
