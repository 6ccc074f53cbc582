package running

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/fstree"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// The fixture trees under testdata are host roots copied from real runs
// (testdata/README.md): every file at its host path, byte for byte.

// auditOnly admits everything; enforceRoot refuses root and privileged.
const (
	auditOnly = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: audit-only}
spec:
  defaultAction: audit
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
`
	enforceRoot = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: enforce-root}
spec:
  defaultAction: audit
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
  rules:
    runAsRoot:  {action: enforce}
    privileged: {action: enforce}
`
)

// The podman-runc fixture: podman 4.3.1 (private --root/--runroot, vfs,
// runc 1.1.5 with its default root /run/runc) ran "web" (--user 1000
// --cap-drop ALL, sleep), "rooty" (sleep) and "done" (/bin/true, exited);
// `runc --root .../runcroot` ran plain1 and created plain2 from one bundle.
const (
	pgr       = "/tmp/pgrjjB"
	podWeb    = "8605a82319a8a6903afc9d002b0213d764b52d47593400f6984f2115fabffa16"
	podRooty  = "a02049444172ce0b7aaf26a947e6cbf42d76b1d3c94048b0379e9fe77191415d"
	podDone   = "3efdb07892933c4fa31da071b545d9ac39d2be17b9f401f54e5df40d3747bccd"
	webPid    = 9246
	plainRoot = pgr + "/runcroot"
)

func podmanRuncOptions(root string) Options {
	return Options{
		HostRoot:         root,
		ContainerdStates: []string{DefaultContainerdState},
		RuncRoots:        []string{DefaultRuncRoot, plainRoot},
		StorageRoots:     []string{pgr + "/root", pgr + "/run"},
	}
}

// tree copies a fixture tree to a temporary host root the test may change.
func tree(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "host")
	if err := fstree.Copy(filepath.Join("testdata", name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func writePolicy(t *testing.T, yaml string) (*policy.Policy, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(dir, "node")
	if err != nil {
		t.Fatal(err)
	}
	return p, dir
}

func kernelPatched(t *testing.T) func(context.Context, *policy.Policy) *policy.KernelState {
	data, err := os.ReadFile("../../policy/testdata/kernel/patched.json")
	if err != nil {
		t.Fatal(err)
	}
	k, err := policy.ParseKernelState(data)
	if err != nil {
		t.Fatal(err)
	}
	return func(context.Context, *policy.Policy) *policy.KernelState { return k }
}

func runOn(t *testing.T, opts Options) *Report {
	t.Helper()
	cand, cpath := writePolicy(t, enforceRoot)
	inForce, ipath := writePolicy(t, auditOnly)
	rep, err := Run(context.Background(), Config{
		Options: opts, Candidate: cand, CandidatePath: cpath, InForce: inForce, InForcePath: ipath,
		Kernel: kernelPatched(t), AuditLog: "/var/log/patchgate/audit.log",
		Now: time.Date(2026, 12, 2, 16, 10, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

type row struct {
	runtime, id, name, status, outcome string
	rules                              []string
}

func rows(rep *Report) []row {
	var out []row
	for _, c := range rep.Containers {
		out = append(out, row{c.Runtime, c.ID, c.Name, c.Status, c.Candidate.Outcome, c.Candidate.Rules})
	}
	return out
}

func TestPodmanAndRunc(t *testing.T) {
	root := tree(t, "podman-runc")
	rep := runOn(t, podmanRuncOptions(root))
	want := []row{
		{RuntimePodman, podWeb, "web", StatusRunning, OutcomeAdmit, nil},
		{RuntimePodman, podRooty, "rooty", StatusRunning, OutcomeRefuse, []string{"runAsRoot"}},
		{RuntimeRunc, "plain1", "", StatusRunning, OutcomeRefuse, []string{"runAsRoot"}},
		{RuntimeRunc, "plain2", "", StatusCreated, OutcomeRefuse, []string{"runAsRoot"}},
	}
	if got := rows(rep); !slices.EqualFunc(got, want, func(a, b row) bool {
		return a.runtime == b.runtime && a.id == b.id && a.name == b.name && a.status == b.status && a.outcome == b.outcome && slices.Equal(a.rules, b.rules)
	}) {
		t.Fatalf("containers:\n%+v\nwant:\n%+v", got, want)
	}
	for _, c := range rep.Containers {
		if c.InForce == nil || c.InForce.Outcome != OutcomeAdmit || c.Candidate.Error != "" {
			t.Errorf("%s: in force %+v, candidate error %q", c.ID, c.InForce, c.Candidate.Error)
		}
	}
	if c := rep.Containers[0]; c.Pid != webPid || c.Bundle != pgr+"/root/vfs-containers/"+podWeb+"/userdata" {
		t.Errorf("web: pid %d bundle %s", c.Pid, c.Bundle)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].ID != podDone || !strings.Contains(rep.Skipped[0].Why, "no runc state") {
		t.Errorf("skipped: %+v", rep.Skipped)
	}
	if s := rep.Summary; s != (Summary{Containers: 4, Refuse: 3, Admit: 1, Changed: 3, Skipped: 1}) {
		t.Errorf("summary %+v", s)
	}
	if !rep.Refused() {
		t.Error("Refused() false")
	}
	if rep.AuditLogError == "" {
		t.Error("no audit log in the fixture, and no word about it")
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`candidate policy: "enforce-root"`, `policy in force:  "audit-only"`,
		"podman   8605a82319a8  web    running  admit             admit",
		"refuse runAsRoot", "containerd /run/containerd (absent)", "runc /run/runc (read)",
		"not running, skipped (1):", "containers-storage 3efdb0789293: not running",
		"4 running: 3 would be refused, 0 flagged, 1 admitted (0 unreadable, counted as refused); 3 decided otherwise than the policy in force; 1 not running, skipped",
	} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || len(back.Containers) != 4 || back.Summary != rep.Summary {
		t.Errorf("JSON round trip: %v %+v", err, back.Summary)
	}
}

// A container is running only while runc's init process is alive and is
// the one runc started; anything else is skipped with the reason.
func TestLiveness(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
		why    string
	}{
		{"pid reused", func(t *testing.T, root string) {
			p := filepath.Join(root, "proc/9246/stat")
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), " 241714 ", " 241715 ", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "pid 9246 is another process now"},
		{"gone", func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, "proc/9246")); err != nil {
				t.Fatal(err)
			}
		}, "init process 9246 is gone"},
		{"zombie", func(t *testing.T, root string) {
			p := filepath.Join(root, "proc/9246/stat")
			b, _ := os.ReadFile(p)
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), "(sleep) S", "(sleep) Z", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "has exited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, "podman-runc")
			tc.change(t, root)
			rep := runOn(t, podmanRuncOptions(root))
			for _, c := range rep.Containers {
				if c.ID == podWeb {
					t.Fatalf("web listed as %s", c.Status)
				}
			}
			found := false
			for _, s := range rep.Skipped {
				if s.ID == podWeb {
					found = true
					if !strings.Contains(s.Why, tc.why) {
						t.Errorf("why %q, want %q", s.Why, tc.why)
					}
				}
			}
			if !found {
				t.Errorf("web not skipped: %+v", rep.Skipped)
			}
		})
	}
}

// What cannot be read is listed with its error and counted as refused,
// never admitted and never dropped.
func TestUnreadableIsRefused(t *testing.T) {
	webBundle := pgr + "/root/vfs-containers/" + podWeb + "/userdata"
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
		id     string
		err    string
	}{
		{"config.json not JSON", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, webBundle, "config.json"), []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "decoding OCI spec"},
		{"config.json a symlink", func(t *testing.T, root string) {
			p := filepath.Join(root, webBundle, "config.json")
			if err := os.Rename(p, p+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("config.json.real", p); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "symlink"},
		{"config.json another user's", func(t *testing.T, root string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			if err := os.Chown(filepath.Join(root, webBundle, "config.json"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "owned by uid 1000"},
		{"bundle gone", func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, webBundle)); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "opening bundle"},
		{"state.json malformed", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "run/runc", podWeb, "state.json"), []byte(`{"id":"`+podWeb+`"}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "no init_process_pid"},
		{"state.json names another container", func(t *testing.T, root string) {
			b, _ := os.ReadFile(filepath.Join(root, "run/runc", podRooty, "state.json"))
			if err := os.WriteFile(filepath.Join(root, "run/runc", podWeb, "state.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "names container"},
		{"state.json a symlink out of the state dir", func(t *testing.T, root string) {
			p := filepath.Join(root, "run/runc", podWeb, "state.json")
			if err := os.Rename(p, filepath.Join(root, "elsewhere.json")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(root, "elsewhere.json"), p); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "symlink"},
		{"state directory a symlink", func(t *testing.T, root string) {
			d := filepath.Join(root, "run/runc", podWeb)
			if err := os.Rename(d, filepath.Join(root, "moved")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(root, "moved"), d); err != nil {
				t.Fatal(err)
			}
		}, podWeb, "symlink; not followed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, "podman-runc")
			tc.change(t, root)
			rep := runOn(t, podmanRuncOptions(root))
			var got *Result
			for i := range rep.Containers {
				if rep.Containers[i].ID == tc.id {
					got = &rep.Containers[i]
				}
			}
			if got == nil {
				t.Fatalf("%s not listed: %+v (skipped %+v)", tc.id, rows(rep), rep.Skipped)
			}
			if got.Candidate.Outcome != OutcomeRefuse || !strings.Contains(got.Candidate.Error, tc.err) {
				t.Errorf("candidate %+v, want refuse with %q", got.Candidate, tc.err)
			}
			if got.InForce == nil || got.InForce.Outcome != OutcomeRefuse {
				t.Errorf("in force %+v, want refuse (unreadable)", got.InForce)
			}
			if rep.Summary.Errors != 1 || !rep.Refused() {
				t.Errorf("summary %+v", rep.Summary)
			}
			var text strings.Builder
			_ = rep.WriteText(&text)
			if !strings.Contains(text.String(), "cannot be judged, counted as refused") {
				t.Errorf("text does not explain the error:\n%s", text.String())
			}
		})
	}
}

// A state directory that exists but cannot be listed stops the run; one
// that does not exist is a source not present.
func TestSources(t *testing.T) {
	root := tree(t, "podman-runc")
	opts := podmanRuncOptions(root)
	opts.RuncRoots = append(opts.RuncRoots, "relative/dir")
	if _, err := Discover(opts); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative dir: %v", err)
	}
	opts = podmanRuncOptions(root)
	opts.RuncRoots = []string{"", plainRoot}
	opts.StorageRoots = nil
	inv, err := Discover(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Found) != 2 || len(inv.Skipped) != 0 {
		t.Errorf("only the plain runc root: found %d, skipped %+v", len(inv.Found), inv.Skipped)
	}
	if err := os.WriteFile(filepath.Join(root, "run/notadir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	opts.RuncRoots = []string{"/run/notadir"}
	if _, err := Discover(opts); err == nil {
		t.Error("a state directory that is a file: no error")
	}
}

// The parsers on the recorded files.
func TestParseRecorded(t *testing.T) {
	root := filepath.Join("testdata", "podman-runc")
	b, err := os.ReadFile(filepath.Join(root, "run/runc", podWeb, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseRuncState(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != podWeb || st.InitPid != webPid || st.InitStart != 241714 || st.Bundle != pgr+"/root/vfs-containers/"+podWeb+"/userdata" {
		t.Errorf("%+v", st)
	}
	b, err = os.ReadFile(filepath.Join(root, "proc/9246/stat"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ParseProcStat(b)
	if err != nil || ps.State != 'S' || ps.StartTime != 241714 {
		t.Errorf("%+v %v", ps, err)
	}
	b, err = os.ReadFile(filepath.Join(root, pgr, "root/vfs-containers/containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := ParseStorageNames(b); n[podWeb] != "web" || n[podDone] != "done" {
		t.Errorf("names %v", n)
	}
	for _, bad := range []string{"", "x", "1 (a) S 1", "1 (a) S 0 1 1 0 -1 4194560 953 0 0 0 4 4 0 0 39 19 1 0 x 2"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) accepted", bad)
		}
	}
	for _, bad := range []string{`{}`, `{"id":"a","init_process_pid":1,"init_process_start":1}`, `{"id":"a","init_process_pid":1,"init_process_start":1,"config":{"labels":["bundle=rel"]}}`,
		`{"id":"a","init_process_pid":1,"init_process_start":1,"config":{"labels":["bundle=/a","bundle=/b"]}}`} {
		if _, err := ParseRuncState([]byte(bad)); err == nil {
			t.Errorf("ParseRuncState(%s) accepted", bad)
		}
	}
}

// The in-force note compares the policy read with the digest the service's
// status names (service.PolicyStatus.Enforces, as check and eval do) and
// gives the reload error when the service refused the files.
func TestServiceNote(t *testing.T) {
	pol, err := policy.LoadBytes("p.yaml", []byte(auditOnly))
	if err != nil {
		t.Fatal(err)
	}
	status := func(ps service.PolicyStatus) string {
		p := filepath.Join(t.TempDir(), "status.json")
		if err := service.WriteStatusFile(p, service.Status{Policy: ps}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		ps   service.PolicyStatus
		want string
	}{
		{service.PolicyStatus{Name: "audit-only", Digest: pol.Digest()}, "the node service enforces it"},
		{service.PolicyStatus{}, "the node service reports no policy"},
		{service.PolicyStatus{Name: "old", Digest: "sha256:0"}, `reports policy "old" (sha256:0), not this one: the service has not reloaded them yet`},
		{service.PolicyStatus{Name: "old", Digest: "sha256:0", Error: "p.yaml:3: bad"}, "not this one: the service's last reload failed and it keeps the last good policy: p.yaml:3: bad"},
	} {
		if got := serviceNote(status(c.ps), pol.Digest()); !strings.Contains(got, c.want) {
			t.Errorf("%+v: note %q, want %q", c.ps, got, c.want)
		}
	}
}
