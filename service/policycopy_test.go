package service

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"
)

// The policy in force is copied root-only for hooks that decide alone and
// cannot see the service's policy path; a broken reload leaves the copy of
// the last good policy.
func TestPolicyCopyFollowsThePolicyInForce(t *testing.T) {
	e := newTestEnv(t)
	copyDir := filepath.Join(e.dir, "var", "policy")
	e.start(t, WithPolicyCopy(copyDir))
	check := func(wantName string) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(copyDir, policy.MainFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("copy mode %v, want 0600", fi.Mode().Perm())
		}
		if di, _ := os.Stat(copyDir); di.Mode().Perm() != 0o700 {
			t.Errorf("copy directory mode %v, want 0700", di.Mode().Perm())
		}
		got, err := policy.Load(copyDir, "node-a")
		if err != nil {
			t.Fatalf("the copy does not load: %v", err)
		}
		if got.Name() != wantName {
			t.Errorf("copy is policy %q, want %q", got.Name(), wantName)
		}
		a, _ := got.MarshalYAML()
		b, _ := e.svc.Policy().MarshalYAML()
		if !bytes.Equal(a, b) {
			t.Errorf("the copy is not the policy in force:\n%s\nvs\n%s", a, b)
		}
		// The status names the copy and the path (patchgate check reads
		// the node's policy from there).
		st := e.svc.Status().Policy
		if st.Copy != copyDir || st.Path != e.policyDir {
			t.Errorf("status policy copy %q path %q, want %q and %q", st.Copy, st.Path, copyDir, e.policyDir)
		}
	}
	check("first")
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), policyNamed("second"), 0o644)
	e.svc.checkPolicy()
	check("second")
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), "spec: {rules: {runAsRoot: {action: maybe}}}\n", 0o644)
	e.svc.checkPolicy()
	check("second")
}

func TestWithPolicyCopyNeedsAnAbsolutePath(t *testing.T) {
	if _, err := New(WithPolicyCopy("var/policy")); err == nil {
		t.Fatal("relative policy copy directory accepted")
	}
}

// The copy's header comment names the policy quoted: no name can end the
// comment and turn the rest into YAML. Written raw, "team-a\nnote: see
// wiki" made the copy fail with policy.yaml:2: note: unknown key, and a
// name with \r, U+0085 or U+2028 made it fail to parse at all.
func TestPolicyCopyHeaderQuotesTheName(t *testing.T) {
	pol, err := policy.LoadBytes("x.yaml", []byte(policyNamed("first")))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team-a\nnote: see wiki", "a\rb", "a\u0085b", "a\u2028b", "a\u2029b", "a\x00b\x1b[2J"} {
		pol.Metadata.Name = name
		body, err := pol.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		out, err := policyCopyYAML(pol)
		if err != nil {
			t.Fatal(err)
		}
		header, ok := bytes.CutSuffix(out, body)
		if !ok {
			t.Fatalf("%q: the copy does not end with the policy:\n%s", name, out)
		}
		breaks := 0
		for _, lb := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			breaks += bytes.Count(header, []byte(lb))
		}
		if breaks != 2 || !bytes.HasPrefix(header, []byte("# ")) || !bytes.Contains(header, []byte("\n# ")) {
			t.Errorf("%q: the header is not two comment lines:\n%q", name, header)
		}
	}
}

// A copy that would not load back as the policy in force is not written:
// WritePolicyCopy fails and the last copy stays, loadable.
func TestPolicyCopyIsLoadedBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policy")
	good, err := policy.LoadBytes("x.yaml", []byte(policyNamed("first")))
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePolicyCopy(dir, good); err != nil {
		t.Fatal(err)
	}
	// A name the loader refuses (a policy from before the check, or from
	// code that built it by hand) makes a copy no hook can load.
	bad, err := policy.LoadBytes("x.yaml", []byte(policyNamed("second")))
	if err != nil {
		t.Fatal(err)
	}
	bad.Metadata.Name = "team-a\nnote: see wiki"
	err = WritePolicyCopy(dir, bad)
	if err == nil || !strings.Contains(err.Error(), "the copy does not load back, the last copy is kept") || !strings.Contains(err.Error(), "not printable") {
		t.Errorf("err = %v, want the copy refused", err)
	}
	got, err := policy.Load(dir, "")
	if err != nil {
		t.Fatalf("the copy does not load: %v", err)
	}
	if got.Digest() != good.Digest() {
		t.Errorf("the copy is %q (%s), want the last good one", got.Name(), got.Digest())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".policy-*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// The service says in its status (and its log) when the copy cannot be
// used: here a copy directory whose parent anyone may write, which hooks
// refuse to read a policy from.
func TestPolicyCopyErrorInStatus(t *testing.T) {
	e := newTestEnv(t)
	open := filepath.Join(e.dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	e.start(t, WithPolicyCopy(filepath.Join(open, "policy")))
	st := e.svc.Status().Policy
	if !strings.Contains(st.CopyError, "the copy does not load back") || !strings.Contains(st.CopyError, "writable by group or others") {
		t.Errorf("status copyError = %q", st.CopyError)
	}
	logged := false
	for _, en := range e.logs.AllEntries() {
		if en.Level == logrus.ErrorLevel && strings.Contains(en.Message, "cannot write the copy of the policy in force") {
			logged = true
		}
	}
	if !logged {
		t.Error("the copy error is not logged")
	}
}
